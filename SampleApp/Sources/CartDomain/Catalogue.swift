/// A product the shop sells, priced in integer minor units (cents).
public struct Product: Sendable, Hashable, Codable {
    public var sku: String
    public var name: String
    public var priceCents: Int

    public init(sku: String, name: String, priceCents: Int) {
        self.sku = sku
        self.name = name
        self.priceCents = priceCents
    }
}

/// The products on sale, by SKU. Prices are read when an item is added and stored in the event,
/// so a later price change never rewrites history.
public struct Catalogue: Sendable {
    public let products: [Product]
    private let bySKU: [String: Product]

    public init(_ products: [Product]) {
        self.products = products
        self.bySKU = Dictionary(products.map { ($0.sku, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public func product(_ sku: String) -> Product? { bySKU[sku] }

    /// The demo shop's shelf.
    public static let demo = Catalogue([
        Product(sku: "TEA-GREEN", name: "Green tea, 100 g", priceCents: 650),
        Product(sku: "TEA-BLACK", name: "Assam black tea, 250 g", priceCents: 1_190),
        Product(sku: "COFFEE-BEANS", name: "Espresso beans, 1 kg", priceCents: 2_490),
        Product(sku: "MUG", name: "Stoneware mug", priceCents: 1_450),
        Product(sku: "KETTLE", name: "Gooseneck kettle", priceCents: 5_900),
        Product(sku: "GRINDER", name: "Hand grinder", priceCents: 7_450),
        Product(sku: "FILTERS", name: "Paper filters, 100", priceCents: 390),
        Product(sku: "HONEY", name: "Acacia honey, 500 g", priceCents: 890),
        Product(sku: "BISCUITS", name: "Oat biscuits", priceCents: 340),
        Product(sku: "TEAPOT", name: "Cast-iron teapot", priceCents: 4_200),
    ])
}
