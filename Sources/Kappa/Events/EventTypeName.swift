/// The stable name an event type is stored under, such as `ItemAddedToCart`.
///
/// Names are part of the log's format, so choose them once and never rename: renaming a Swift type
/// is free, changing this name orphans every stored event of the old name.
/// A name is 1…128 ASCII characters: a letter, then letters, digits and `._-`.
public struct EventTypeName: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The longest name accepted.
    public static let maximumLength = 128

    /// The name's text.
    public let rawValue: String

    /// Validates `rawValue`.
    /// - Throws: ``EventStoreError`` with code ``EventStoreError/Code/invalidEventType``.
    public init(_ rawValue: String) throws {
        if let problem = Self.problem(with: rawValue) {
            throw EventStoreError(.invalidEventType, eventType: rawValue, message: problem)
        }
        self.rawValue = rawValue
    }

    /// A literal name; an invalid literal is a programming error and traps at first use.
    public init(stringLiteral value: String) {
        do { try self.init(value) } catch { preconditionFailure("\(error)") }
    }

    public var description: String { rawValue }

    static func problem(with text: String) -> String? {
        guard let first = text.unicodeScalars.first else { return "an event type name must not be empty" }
        if text.utf8.count > maximumLength {
            return "an event type name is at most \(maximumLength) characters; this one has \(text.utf8.count)"
        }
        guard ("a"..."z").contains(first) || ("A"..."Z").contains(first) else {
            return "an event type name starts with an ASCII letter"
        }
        let allowed: (Unicode.Scalar) -> Bool = {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)
        }
        if let bad = text.unicodeScalars.first(where: { !allowed($0) }) {
            return "an event type name may hold ASCII letters, digits and ._- only; found \(bad.escaped(asASCII: true))"
        }
        return nil
    }
}
