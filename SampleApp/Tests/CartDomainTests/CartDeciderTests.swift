import CartDomain
import Foundation
import Kappa
import KappaTesting
import Testing

@Suite("Cart decider")
struct CartDeciderTests {
    let spec = DeciderSpecification(Cart.decider(id: "c1", catalogue: .demo))
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    var opened: CartEvent { .opened(CartOpened(cartId: "c1", customer: "ada", openedAt: t0)) }
    func added(_ sku: String, _ quantity: Int, _ price: Int) -> CartEvent {
        .itemAdded(ItemAddedToCart(cartId: "c1", sku: sku, quantity: quantity, unitPrice: price, addedAt: t0))
    }

    /// The code and field of the rule `command` breaks after `history`.
    func refusal(_ history: [CartEvent], _ command: CartCommand) -> (CartError.Code, String?)? {
        guard case .failure(let error as CartError) = spec.given(history).when(command).outcome else { return nil }
        return (error.code, error.field)
    }

    @Test func aCustomerShopsAndChecksOut() throws {
        try spec.given([]).when(.open(customer: "  ada ", at: t0)).then([opened])
        // The price is the catalogue's, in cents, stored in the event.
        try spec.given([opened]).when(.addItem(sku: "MUG", quantity: 2, at: t0)).then([added("MUG", 2, 1_450)])
        // Adding more of a line changes its quantity, at the price it was added at.
        try spec.given([opened, added("MUG", 2, 1_400)]).when(.addItem(sku: "MUG", quantity: 3, at: t0))
            .then([.quantityChanged(ItemQuantityChanged(cartId: "c1", sku: "MUG", quantity: 5, previousQuantity: 2, unitPrice: 1_400))])
        try spec.given([opened, added("MUG", 2, 1_450)]).when(.changeQuantity(sku: "MUG", quantity: 2)).then([])
        try spec.given([opened, added("MUG", 2, 1_450)]).when(.removeItem(sku: "MUG"))
            .then([.itemRemoved(ItemRemovedFromCart(cartId: "c1", sku: "MUG", quantity: 2, unitPrice: 1_450))])
        let history = [opened, added("MUG", 2, 1_450), added("TEA-GREEN", 1, 650)]
        try spec.given(history).when(.checkOut(at: t0)).then([.checkedOut(CartCheckedOut(cartId: "c1", totalCents: 3_550, checkedOutAt: t0))])
        try spec.given(history).when(.checkOut(at: t0)).thenState(.checkedOut(totalCents: 3_550))
        try spec.given(history).when(.abandon(at: t0)).then([.abandoned(CartAbandoned(cartId: "c1", valueCents: 3_550, abandonedAt: t0))])
    }

    @Test func theShopsRulesAreTypedErrorsNamingTheField() {
        #expect(refusal([], .addItem(sku: "MUG", quantity: 1, at: t0))! == (.notOpened, nil))
        #expect(refusal([opened], .open(customer: "bob", at: t0))! == (.alreadyOpened, nil))
        #expect(refusal([], .open(customer: "   ", at: t0))! == (.invalidCustomer, "customer"))
        #expect(refusal([opened], .addItem(sku: "NOPE", quantity: 1, at: t0))! == (.unknownProduct, "sku"))
        #expect(refusal([opened], .addItem(sku: "MUG", quantity: 0, at: t0))! == (.quantityOutOfRange, "quantity"))
        #expect(refusal([opened], .addItem(sku: "MUG", quantity: 100, at: t0))! == (.quantityOutOfRange, "quantity"))
        #expect(refusal([opened, added("MUG", 60, 1_450)], .addItem(sku: "MUG", quantity: 40, at: t0))! == (.quantityOutOfRange, "quantity"))
        #expect(refusal([opened, added("MUG", 1, 1_450)], .changeQuantity(sku: "MUG", quantity: 100))! == (.quantityOutOfRange, "quantity"))
        #expect(refusal([opened], .changeQuantity(sku: "MUG", quantity: 3))! == (.itemNotInCart, "sku"))
        #expect(refusal([opened], .removeItem(sku: "MUG"))! == (.itemNotInCart, "sku"))
        #expect(refusal([opened], .checkOut(at: t0))! == (.emptyCart, nil))
        let done: [CartEvent] = [opened, added("MUG", 1, 1_450), .checkedOut(CartCheckedOut(cartId: "c1", totalCents: 1_450, checkedOutAt: t0))]
        for command: CartCommand in [.addItem(sku: "MUG", quantity: 1, at: t0), .removeItem(sku: "MUG"), .checkOut(at: t0), .abandon(at: t0)] {
            #expect(refusal(done, command)! == (.cartClosed, nil))
        }
        let gone: [CartEvent] = [opened, .abandoned(CartAbandoned(cartId: "c1", valueCents: 0, abandonedAt: t0))]
        #expect(refusal(gone, .addItem(sku: "MUG", quantity: 1, at: t0))! == (.cartClosed, nil))
    }

    /// Any `Int` may come in a request, and a log written by other code may hold any `Int`: every sum
    /// and product is checked, and a number out of range is refused, never trapped on.
    @Test func quantitiesAndMoneyOutOfRangeAreRefusedWithoutOverflowing() {
        let line: [CartEvent] = [opened, added("MUG", 1, 1_450)]
        #expect(refusal(line, .addItem(sku: "MUG", quantity: .max, at: t0))! == (.quantityOutOfRange, "quantity"))
        #expect(refusal(line, .addItem(sku: "MUG", quantity: .min, at: t0))! == (.quantityOutOfRange, "quantity"))
        #expect(refusal([opened, added("MUG", .max, 1_450)], .addItem(sku: "MUG", quantity: 1, at: t0))! == (.quantityOutOfRange, "quantity"))
        #expect(refusal([opened, added("MUG", .min, 1_450)], .addItem(sku: "MUG", quantity: -1, at: t0))! == (.quantityOutOfRange, "quantity"))
        // A price that makes the cart's total too large to count in cents.
        let dear = DeciderSpecification(Cart.decider(id: "c1", catalogue: Catalogue([Product(sku: "GOLD", name: "Gold", priceCents: .max / 2)])))
        guard case .failure(let error as CartError) = dear.given([opened]).when(.addItem(sku: "GOLD", quantity: 3, at: t0)).outcome else {
            Issue.record("3 × Int.max / 2 was accepted")
            return
        }
        #expect((error.code, error.field) == (.quantityOutOfRange, "quantity"))
        // Lines from the log whose value overflows: checking out and abandoning are refused.
        let overflowing = [opened, added("MUG", 99, .max / 10), added("TEA-GREEN", 1, .max)]
        #expect(refusal(overflowing, .checkOut(at: t0))! == (.totalOutOfRange, nil))
        #expect(refusal(overflowing, .abandon(at: t0))! == (.totalOutOfRange, nil))
        #expect(spec.decider.fold(overflowing).totalCents == nil)
    }

    @Test func aCustomerNameWithAControlCharacterIsRefused() {
        // C0 (a newline too, even where it would be trimmed), DEL and C1.
        for name in ["a\u{0}b", "ada\u{1B}[2J", "a\u{7F}", "a\u{85}b", "a\u{9F}", "a\tb", "ada\n"] {
            #expect(refusal([], .open(customer: name, at: t0))! == (.invalidCustomer, "customer"), "\(name.unicodeScalars.map(\.value))")
        }
        #expect(refusal([], .open(customer: "Zoë 李\u{A0}", at: t0)) == nil)
    }

    @Test func eventsRoundTripThroughTheRegistryUnderStableNames() throws {
        let events: [CartEvent] = [
            opened, added("KETTLE", 1, 5_900),
            .checkedOut(CartCheckedOut(cartId: "c1", totalCents: 5_900, checkedOutAt: t0)),
        ]
        for (index, event) in events.enumerated() {
            let stored = try CartEvent.registry.encode(event, id: UUID(), recordedAt: t0)
            let recorded = RecordedEvent(
                id: stored.id, streamID: try Cart.stream("c1"), streamVersion: Int64(index + 1),
                position: LogPosition(transactionID: 1, globalPosition: Int64(index + 1)),
                eventType: stored.eventType.rawValue, schemaVersion: stored.schemaVersion,
                payload: stored.payload, metadata: .init(), recordedAt: t0)
            #expect(try CartEvent.registry.decode(recorded)?.event == event)
        }
        #expect(
            CartEvent.registry.eventTypes == [
                "CartOpened", "ItemAddedToCart", "ItemQuantityChanged", "ItemRemovedFromCart",
                "CartCheckedOut", "CartAbandoned",
            ])
    }
}

@Suite("Generated shop history")
struct ShopHistoryTests {
    let history = ShopHistory(seed: 7, start: Date(timeIntervalSince1970: 1_800_000_000), days: 10)

    @Test func theSameSeedGivesTheSameHistoryAndEveryCartFollowsTheRules() throws {
        #expect(history.cart(5).id == ShopHistory(seed: 7, start: history.start, days: 10).cart(5).id)
        #expect(history.cart(5).events.map(\.event) == ShopHistory(seed: 7, start: history.start, days: 10).cart(5).events.map(\.event))
        #expect(history.cart(5).id != ShopHistory(seed: 8, start: history.start, days: 10).cart(5).id)
        #expect(history.eventID(cart: 3, number: 1) == history.eventID(cart: 3, number: 1))
        #expect(history.eventID(cart: 3, number: 1) != history.eventID(cart: 3, number: 2))
        var outcomes: [String: Int] = [:], events = 0
        for index in 0..<2_000 {
            let (id, cart) = history.cart(index)
            events += cart.count
            guard case .opened(let opened)? = cart.first?.event else {
                Issue.record("cart \(index) does not start opened")
                continue
            }
            #expect(opened.cartId == id)
            // Times move forward and stay in the window.
            #expect(zip(cart, cart.dropFirst()).allSatisfy { $0.at <= $1.at })
            #expect(cart[0].at >= history.start && cart[0].at < history.start.addingTimeInterval(10 * 86_400))
            switch Cart.decider(id: id, catalogue: .demo).fold(cart.map(\.event)) {
            case .checkedOut: outcomes["checkedOut", default: 0] += 1
            case .abandoned: outcomes["abandoned", default: 0] += 1
            case .open(let lines): outcomes[lines.isEmpty ? "empty" : "open", default: 0] += 1
            case .notOpened: Issue.record("cart \(index) never opened")
            }
        }
        // About 65% checked out, 20% abandoned, 15% open; about 5.5 events per cart.
        #expect((1_150...1_450).contains(outcomes["checkedOut", default: 0]), "\(outcomes)")
        #expect((300...500).contains(outcomes["abandoned", default: 0]), "\(outcomes)")
        #expect((4.5...6.5).contains(Double(events) / 2_000), "\(events)")
    }
}
