/// A database URL, or the `PG*` variables, asked for a connection that cannot be set up as asked: an
/// unknown `sslmode`, a CA file that cannot be read, a verifying mode without a CA. It names the
/// setting at fault as it was given (`sslmode` in the URL, or `PGSSLMODE`) and the file, when there is one.
public struct DatabaseURLError: Error, Sendable, CustomStringConvertible {
    /// What went wrong. New codes may be added in minor releases, so switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// `sslmode` is not one of libpq's (`disable`, `allow`, `prefer`, `require`, `verify-ca`,
        /// `verify-full`), or is weaker than `verify-full` beside `sslrootcert=system`.
        public static let invalidSSLMode = Code("invalidSSLMode")
        /// `verify-ca` or `verify-full` without `sslrootcert`: there is nothing to verify against.
        public static let missingRootCertificate = Code("missingRootCertificate")
        /// The `sslrootcert` file cannot be read, or holds no PEM certificate.
        public static let unreadableRootCertificate = Code("unreadableRootCertificate")
        /// A URL of several hosts asks for a `target_session_attrs` other than `read-write` or
        /// `primary` (the hosts are routed to the one that accepts writes), or a host's port is not a number.
        public static let invalidHosts = Code("invalidHosts")
    }

    /// What went wrong; switch on it with a `default`.
    public var code: Code
    /// The setting at fault as it was given: `sslmode` or `sslrootcert` (in the URL), `PGSSLMODE` or
    /// `PGSSLROOTCERT` (in the environment).
    public var parameter: String
    /// The file at fault, when there is one.
    public var file: String?
    /// A human-readable account.
    public var message: String
    /// The error underneath (the file system's, the certificate parser's), when there is one.
    public var underlying: (any Error & Sendable)?

    /// An error of `code` about `parameter`; `file` names the file at fault, when there is one.
    public init(_ code: Code, parameter: String, file: String? = nil, message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.parameter = parameter
        self.file = file
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        var text = "DatabaseURLError.\(code): \(parameter): \(message)"
        if let file { text += "; file: \(file)" }
        if let underlying { text += "; underlying: \(String(reflecting: underlying))" }
        return text
    }
}
