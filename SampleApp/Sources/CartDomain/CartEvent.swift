import Foundation
import Kappa

/// A cart was opened (for a customer, at a time the command supplied).
public struct CartOpened: DomainEvent, Equatable {
    public static let eventType: EventTypeName = "CartOpened"
    public var cartId: String
    public var customer: String
    public var openedAt: Date

    public init(cartId: String, customer: String, openedAt: Date) {
        self.cartId = cartId
        self.customer = customer
        self.openedAt = openedAt
    }
}

/// Items were added; the unit price is the catalogue's at that moment, in cents.
public struct ItemAddedToCart: DomainEvent, Equatable {
    public static let eventType: EventTypeName = "ItemAddedToCart"
    public var cartId: String
    public var sku: String
    public var quantity: Int
    public var unitPrice: Int
    public var addedAt: Date

    public init(cartId: String, sku: String, quantity: Int, unitPrice: Int, addedAt: Date) {
        self.cartId = cartId
        self.sku = sku
        self.quantity = quantity
        self.unitPrice = unitPrice
        self.addedAt = addedAt
    }
}

/// A line's quantity was changed to `quantity` (it was `previousQuantity`).
public struct ItemQuantityChanged: DomainEvent, Equatable {
    public static let eventType: EventTypeName = "ItemQuantityChanged"
    public var cartId: String
    public var sku: String
    public var quantity: Int
    public var previousQuantity: Int
    public var unitPrice: Int

    public init(cartId: String, sku: String, quantity: Int, previousQuantity: Int, unitPrice: Int) {
        self.cartId = cartId
        self.sku = sku
        self.quantity = quantity
        self.previousQuantity = previousQuantity
        self.unitPrice = unitPrice
    }
}

/// A line was removed; `quantity` and `unitPrice` are what it held.
public struct ItemRemovedFromCart: DomainEvent, Equatable {
    public static let eventType: EventTypeName = "ItemRemovedFromCart"
    public var cartId: String
    public var sku: String
    public var quantity: Int
    public var unitPrice: Int

    public init(cartId: String, sku: String, quantity: Int, unitPrice: Int) {
        self.cartId = cartId
        self.sku = sku
        self.quantity = quantity
        self.unitPrice = unitPrice
    }
}

public struct CartCheckedOut: DomainEvent, Equatable {
    public static let eventType: EventTypeName = "CartCheckedOut"
    public var cartId: String
    public var totalCents: Int
    public var checkedOutAt: Date

    public init(cartId: String, totalCents: Int, checkedOutAt: Date) {
        self.cartId = cartId
        self.totalCents = totalCents
        self.checkedOutAt = checkedOutAt
    }
}

/// The customer walked away; the value left in the cart is kept for the read models.
public struct CartAbandoned: DomainEvent, Equatable {
    public static let eventType: EventTypeName = "CartAbandoned"
    public var cartId: String
    public var valueCents: Int
    public var abandonedAt: Date

    public init(cartId: String, valueCents: Int, abandonedAt: Date) {
        self.cartId = cartId
        self.valueCents = valueCents
        self.abandonedAt = abandonedAt
    }
}

/// Every event of a cart's stream.
public enum CartEvent: Equatable, Sendable {
    case opened(CartOpened)
    case itemAdded(ItemAddedToCart)
    case quantityChanged(ItemQuantityChanged)
    case itemRemoved(ItemRemovedFromCart)
    case checkedOut(CartCheckedOut)
    case abandoned(CartAbandoned)

    public var payload: any DomainEvent {
        switch self {
        case .opened(let event): event
        case .itemAdded(let event): event
        case .quantityChanged(let event): event
        case .itemRemoved(let event): event
        case .checkedOut(let event): event
        case .abandoned(let event): event
        }
    }

    /// How cart events are stored: stable type names, current schema versions.
    public static let registry = EventRegistry<CartEvent>(payload: \.payload) {
        $0.register(CartOpened.self, as: CartEvent.opened)
        $0.register(ItemAddedToCart.self, as: CartEvent.itemAdded)
        $0.register(ItemQuantityChanged.self, as: CartEvent.quantityChanged)
        $0.register(ItemRemovedFromCart.self, as: CartEvent.itemRemoved)
        $0.register(CartCheckedOut.self, as: CartEvent.checkedOut)
        $0.register(CartAbandoned.self, as: CartEvent.abandoned)
    }
}
