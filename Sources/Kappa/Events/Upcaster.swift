import Foundation

/// Turns an event stored at one schema version into the next version's shape, on read.
///
/// The log is immutable, so an event stored as version 1 stays version 1 forever. Upcasters chain:
/// an event stored at v1 whose type is now at v3 goes through the v1→v2 and the v2→v3 upcasters.
///
/// ```swift
/// registry.register(ItemAddedToCart.self, as: CartEvent.itemAdded, upcasters: [
///     .from(1, ItemAddedToCartV1.self) { old in ItemAddedToCartV2(sku: old.sku, quantity: 1) },
///     .from(2, ItemAddedToCartV2.self) { old in ItemAddedToCart(sku: old.sku, quantity: old.quantity, unitPrice: 0) },
/// ])
/// ```
public struct Upcaster: Sendable {
    /// The stored version this upcaster reads; it produces version `fromVersion + 1`.
    public let fromVersion: Int
    let transform: @Sendable (Data, JSONDecoder, JSONEncoder) throws -> Data

    /// Decodes the version-`version` payload as `Old` and converts it to the next version's shape.
    public static func from<Old: Decodable & Sendable, New: Encodable & Sendable>(
        _ version: Int, _ old: Old.Type, _ convert: @escaping @Sendable (Old) throws -> New
    ) -> Upcaster {
        Upcaster(fromVersion: version) { data, decoder, encoder in
            try encoder.encode(convert(try decoder.decode(Old.self, from: data)))
        }
    }

    /// Rewrites the version-`version` JSON payload into the next version's JSON, for changes
    /// easier to express on raw JSON than with an old Swift type.
    public static func json(from version: Int, _ transform: @escaping @Sendable (Data) throws -> Data) -> Upcaster {
        Upcaster(fromVersion: version) { data, _, _ in try transform(data) }
    }
}
