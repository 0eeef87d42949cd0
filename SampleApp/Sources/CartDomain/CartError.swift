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
}
