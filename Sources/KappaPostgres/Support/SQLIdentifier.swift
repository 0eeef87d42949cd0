/// A PostgreSQL identifier (schema or table name) that came from a name, validated and quoted.
///
/// Only lower-case ASCII letters, digits and `_`, starting with a letter or `_`, at most 63 bytes:
/// such a name needs no case folding, can never close its quotes, and is always quoted anyway.
public struct SQLIdentifier: Hashable, Sendable, CustomStringConvertible {
    /// The name as given.
    public let name: String

    /// - Throws: ``KappaPostgresError`` with code `invalidIdentifier`, naming `role` ("schema", "table").
    public init(_ name: String, role: String) throws {
        guard let first = name.unicodeScalars.first, name.utf8.count <= 63,
            first == "_" || ("a"..."z").contains(first),
            name.unicodeScalars.allSatisfy({ $0 == "_" || ("a"..."z").contains($0) || ("0"..."9").contains($0) })
        else {
            throw KappaPostgresError(
                .invalidIdentifier,
                message: "\(role) name '\(name)' is not valid: use 1…63 lower-case ASCII letters, digits and _, starting with a letter or _")
        }
        self.name = name
    }

    /// The identifier in double quotes, ready to put into SQL.
    public var quoted: String { "\"\(name)\"" }
    public var description: String { quoted }

    /// A name read from the system catalogue, quoted for SQL (embedded quotes doubled).
    package static func quote(catalogName name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
