/// A broken business rule, naming the field at fault when there is one (the HTTP API answers 4xx
/// with it). New codes may be added, so switch with a `default`.
public struct CartError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        public static let notOpened = Code("notOpened")
        public static let alreadyOpened = Code("alreadyOpened")
        public static let unknownProduct = Code("unknownProduct")
        public static let quantityOutOfRange = Code("quantityOutOfRange")
        public static let itemNotInCart = Code("itemNotInCart")
        public static let cartClosed = Code("cartClosed")
        public static let emptyCart = Code("emptyCart")
        public static let invalidCustomer = Code("invalidCustomer")
        /// The cart's value does not fit an `Int` of cents (only a log written by other code holds such a cart).
        public static let totalOutOfRange = Code("totalOutOfRange")
    }

    public var code: Code
    /// The request field the rule is about (`sku`, `quantity`, `customer`), if any.
    public var field: String?
    public var message: String

    public init(_ code: Code, field: String? = nil, _ message: String) {
        self.code = code
        self.field = field
        self.message = message
    }

    public var description: String { "CartError.\(code)\(field.map { " (\($0))" } ?? ""): \(message)" }

    /// Quantities a line may hold.
    public static let quantities = 1...99

    /// Whether `text` holds a control character (Unicode's `Cc`: C0, DEL and C1, U+0000–U+001F and
    /// U+007F–U+009F). Names and SKUs never hold one, and PostgreSQL's text cannot store NUL.
    public static func hasControlCharacter(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}
