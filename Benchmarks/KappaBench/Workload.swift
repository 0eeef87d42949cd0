import ArgumentParser
import Kappa
import KappaFixtures
import KappaPostgres

/// What the live benchmark's throughput rounds append, one event an append.
enum Workload: String, ExpressibleByArgument, CaseIterable {
    /// The sample's cart shape: each writer fills its carts one after another, ``eventsPerCart``
    /// events each (adds, every fifth a removal, a checkout last), each append expecting the cart's version.
    case carts
    /// Every append starts a cart of its own: each event is a new row of the read model.
    case newCarts = "new-carts"

    static let eventsPerCart = 10

    /// Appends writer `writer`'s `index`th event of a round; no two rounds or phases share a cart.
    func append(_ store: PostgresEventStore, round: Int, following: Bool, writer: Int, index: Int) async throws {
        let base = ((round * 2 + (following ? 1 : 0)) * 32 + writer) * 100_000
        switch self {
        case .newCarts:
            _ = try await store.append([CartEvents.added(cart: base + index)], to: StreamID("cart-\(base + index)"), expectedVersion: .noStream)
        case .carts:
            let (cart, n) = (base + index / Self.eventsPerCart, index % Self.eventsPerCart)
            let event =
                n == Self.eventsPerCart - 1
                ? CartEvents.checkedOut(cart: cart)
                : n % 5 == 4
                    ? CartEvents.removed(cart: cart, sku: "SKU-\(n - 1)", unitPrice: 100 + n - 1)
                    : CartEvents.added(cart: cart, sku: "SKU-\(n)", quantity: 1 + n % 3, unitPrice: 100 + n)
            _ = try await store.append([event], to: StreamID("cart-\(cart)"), expectedVersion: .exact(Int64(n)))
        }
    }
}
