/// The identity of one stream in the log, such as `cart-6f1c…`.
///
/// A stream id is 1…200 characters of ASCII letters, digits and `-_.:@/+=`.
/// The limits keep ids safe to show in logs and URLs; they are checked when the value is made,
/// so an invalid id never reaches the store.
public struct StreamID: Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The longest id accepted.
    public static let maximumLength = 200

    /// The id's text.
    public let rawValue: String

    /// Validates `rawValue`.
    /// - Throws: ``EventStoreError`` with code ``EventStoreError/Code/invalidStreamID``.
    public init(_ rawValue: String) throws {
        if let problem = Self.problem(with: rawValue) {
            throw EventStoreError(.invalidStreamID, stream: rawValue, message: problem)
        }
        self.rawValue = rawValue
    }

    /// For values read back from a store, which validated them on the way in.
    package init(unchecked rawValue: String) {
        self.rawValue = rawValue
    }

    /// A literal stream id; an invalid literal is a programming error and traps.
    public init(stringLiteral value: String) {
        do { try self.init(value) } catch { preconditionFailure("\(error)") }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }

    static func problem(with text: String) -> String? {
        if text.isEmpty { return "a stream id must not be empty" }
        if text.utf8.count > maximumLength {
            return "a stream id is at most \(maximumLength) bytes; this one has \(text.utf8.count)"
        }
        if let bad = text.unicodeScalars.first(where: { !allowed($0) }) {
            return "a stream id may hold ASCII letters, digits and -_.:@/+= only; found \(bad.escaped(asASCII: true))"
        }
        return nil
    }

    private static func allowed(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "-", "_", ".", ":", "@", "/", "+", "=": true
        default: false
        }
    }
}
