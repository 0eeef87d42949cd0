/// An error from KappaPostgres's own machinery (configuration, migrations), as opposed to the log's
/// `Kappa.EventStoreError`.
public struct KappaPostgresError: Error, Sendable, CustomStringConvertible {
    /// What went wrong. New codes may be added in minor releases, so switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A schema or table name is not a safe identifier.
        public static let invalidIdentifier = Code("invalidIdentifier")
        /// A migration file's name does not follow `NNNN_description.sql`, or two files share a version.
        public static let invalidMigrationFile = Code("invalidMigrationFile")
        /// A migration file that was already applied has been edited since.
        public static let migrationChecksumMismatch = Code("migrationChecksumMismatch")
        /// The database records an applied migration that is not among the files given.
        public static let unknownAppliedMigration = Code("unknownAppliedMigration")
        /// A migration's SQL failed, or the run could not finish (its connection was lost, say);
        /// nothing of that run was kept.
        public static let migrationFailed = Code("migrationFailed")
        /// The configuration points somewhere it must not: the runtime's tables into a log's schema.
        public static let invalidConfiguration = Code("invalidConfiguration")
    }

    /// What went wrong; switch on it with a `default`.
    public var code: Code
    /// The migration file at fault, when there is one.
    public var file: String?
    /// A human-readable account.
    public var message: String
    /// The error underneath (a driver error, say), when there is one.
    public var underlying: (any Error & Sendable)?

    /// An error of `code`; `file` names the migration file at fault, when there is one.
    public init(_ code: Code, file: String? = nil, message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.file = file
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        var text = "KappaPostgresError.\(code): \(message)"
        if let file { text += "; file: \(file)" }
        if let underlying { text += "; underlying: \(String(reflecting: underlying))" }
        return text
    }
}
