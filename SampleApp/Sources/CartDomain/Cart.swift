import Foundation
import Kappa

/// The cart aggregate as a pure decider: the rules of the shop, no I/O, no clock.
public enum Cart {
    /// The stream a cart's events go to.
    public static func stream(_ cartId: String) throws -> StreamID { try StreamID("cart-\(cartId)") }

    public static func decider(id cartId: String, catalogue: Catalogue) -> Decider<CartCommand, CartEvent, CartState> {
        Decider(
            initialState: .notOpened,
            decide: { command, state in try decide(command, state, cartId: cartId, catalogue: catalogue) },
            evolve: evolve)
    }

    static func decide(_ command: CartCommand, _ state: CartState, cartId: String, catalogue: Catalogue) throws -> [CartEvent] {
        switch (command, state) {
        case (.open(let customer, let at), .notOpened):
            let trimmed = customer.trimmingCharacters(in: .whitespacesAndNewlines)
            guard (1...100).contains(trimmed.count) else {
                throw CartError(.invalidCustomer, field: "customer", "a customer name has 1 to 100 characters")
            }
            guard !CartError.hasControlCharacter(customer) else {
                throw CartError(.invalidCustomer, field: "customer", "a customer name has no control characters")
            }
            return [.opened(CartOpened(cartId: cartId, customer: trimmed, openedAt: at))]
        case (.open, _):
            throw CartError(.alreadyOpened, "cart \(cartId) is already opened")
        case (_, .notOpened):
            throw CartError(.notOpened, "cart \(cartId) has not been opened")
        case (_, .checkedOut):
            throw CartError(.cartClosed, "cart \(cartId) is checked out; it cannot change any more")
        case (_, .abandoned):
            throw CartError(.cartClosed, "cart \(cartId) was abandoned; it cannot change any more")

        case (.addItem(let sku, let quantity, let at), .open(let lines)):
            guard let product = catalogue.product(sku) else {
                throw CartError(.unknownProduct, field: "sku", "there is no product \(sku)")
            }
            // Any Int may arrive, and a line read from the log may hold any Int: the sum reports an
            // overflow instead of trapping.
            let held = lines[sku]?.quantity ?? 0
            let (total, overflowed) = held.addingReportingOverflow(quantity)
            guard CartError.quantities.contains(quantity), !overflowed, CartError.quantities.contains(total) else {
                throw CartError(.quantityOutOfRange, field: "quantity", "a line holds 1 to 99 items (asked to add \(quantity) to \(held))")
            }
            var after = lines
            after[sku] = .init(quantity: total, unitPrice: lines[sku]?.unitPrice ?? product.priceCents)
            guard CartState.value(of: after.values) != nil else {
                throw CartError(.quantityOutOfRange, field: "quantity", "the cart's total would be more than can be counted in cents")
            }
            if let line = lines[sku] {
                return [
                    .quantityChanged(
                        ItemQuantityChanged(
                            cartId: cartId, sku: sku, quantity: total, previousQuantity: line.quantity,
                            unitPrice: line.unitPrice))
                ]
            }
            return [.itemAdded(ItemAddedToCart(cartId: cartId, sku: sku, quantity: quantity, unitPrice: product.priceCents, addedAt: at))]
        case (.changeQuantity(let sku, let quantity), .open(let lines)):
            guard let line = lines[sku] else { throw CartError(.itemNotInCart, field: "sku", "\(sku) is not in cart \(cartId)") }
            guard CartError.quantities.contains(quantity) else {
                throw CartError(.quantityOutOfRange, field: "quantity", "a line holds 1 to 99 items (asked for \(quantity))")
            }
            guard quantity != line.quantity else { return [] }
            return [
                .quantityChanged(
                    ItemQuantityChanged(
                        cartId: cartId, sku: sku, quantity: quantity, previousQuantity: line.quantity,
                        unitPrice: line.unitPrice))
            ]
        case (.removeItem(let sku), .open(let lines)):
            guard let line = lines[sku] else { throw CartError(.itemNotInCart, field: "sku", "\(sku) is not in cart \(cartId)") }
            return [.itemRemoved(ItemRemovedFromCart(cartId: cartId, sku: sku, quantity: line.quantity, unitPrice: line.unitPrice))]
        case (.checkOut(let at), .open(let lines)):
            guard !lines.isEmpty else { throw CartError(.emptyCart, "cart \(cartId) is empty; add an item before checking out") }
            return [.checkedOut(CartCheckedOut(cartId: cartId, totalCents: try total(of: lines, cartId), checkedOutAt: at))]
        case (.abandon(let at), .open(let lines)):
            return [.abandoned(CartAbandoned(cartId: cartId, valueCents: try total(of: lines, cartId), abandonedAt: at))]
        }
    }

    /// The lines' value; only a log written by other code can hold lines whose value does not fit
    /// an `Int` (the decider refuses to add them), and such a cart is refused, not trapped on.
    static func total(of lines: [String: CartState.Line], _ cartId: String) throws -> Int {
        guard let total = CartState.value(of: lines.values) else {
            throw CartError(.totalOutOfRange, "cart \(cartId) holds more than can be counted in cents")
        }
        return total
    }

    static func evolve(_ state: CartState, _ event: CartEvent) -> CartState {
        switch (state, event) {
        case (.notOpened, .opened):
            return .open(lines: [:])
        case (.open(var lines), .itemAdded(let e)):
            lines[e.sku] = .init(quantity: e.quantity, unitPrice: e.unitPrice)
            return .open(lines: lines)
        case (.open(var lines), .quantityChanged(let e)):
            lines[e.sku] = .init(quantity: e.quantity, unitPrice: e.unitPrice)
            return .open(lines: lines)
        case (.open(var lines), .itemRemoved(let e)):
            lines[e.sku] = nil
            return .open(lines: lines)
        case (.open, .checkedOut(let e)):
            return .checkedOut(totalCents: e.totalCents)
        case (.open, .abandoned):
            return .abandoned
        default:
            return state // an event that does not apply in this phase changes nothing
        }
    }
}
