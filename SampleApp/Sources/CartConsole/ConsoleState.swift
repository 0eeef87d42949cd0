import Foundation

/// Everything the console shows, changed only by ``handle(_:)``: keys and answers from the service
/// come in as messages, requests to make go out as effects. Pure, so tests drive it without a terminal.
struct ConsoleState {
    typealias Cart = ShopClient.Cart

    enum Message: Sendable {
        case key(Key)
        case tick
        case refreshed(carts: [Cart], mine: [Cart], readModel: ShopClient.ReadModel)
        case cartLoaded(id: String, cart: Cart?, events: [ShopClient.Event])
        case products([ShopClient.Product])
        case accepted(String, cartId: String, position: String?)
        case buildStarted(Int)
        case compared(ShopClient.Comparison)
        case promoted(Int)
        case rolledBack(Int)
        /// A request failed; `effect` is the one that asked for it.
        case failed(String, code: String, effect: Effect)
    }

    enum Effect: Sendable, Equatable {
        case refresh(mine: [String])
        case loadCart(String, after: String?)
        case loadProducts
        case open(customer: String)
        case add(cart: String, sku: String)
        case remove(cart: String, sku: String)
        case checkOut(cart: String)
        case abandon(cart: String)
        case build(version: Int)
        case compare(old: Int, new: Int)
        case promote(version: Int)
        case rollback
        case quit
    }

    /// The migration the `m` key runs: build the new version, compare, switch.
    enum Migration: Equatable {
        case idle
        case building(Int)
        case comparing(Int)
        case promoting(Int, ShopClient.Comparison)
        case done(Int, ShopClient.Comparison?)
        case failed(String)
    }

    enum Overlay: Equatable {
        case none, help
        /// Choosing a product to add (all products) or a line to remove (the cart's skus).
        case picker(adding: Bool, choices: [String], selected: Int)
    }

    var url: String
    var carts: [Cart] = []
    /// Carts opened in this session, shown first.
    var mine: [Cart] = []
    var myCartIDs: [String] = []
    var selected = 0
    var cartID: String?
    var cart: Cart?
    var events: [ShopClient.Event] = []
    var readModel: ShopClient.ReadModel?
    var products: [ShopClient.Product] = []
    var overlay = Overlay.none
    var message: (text: String, isError: Bool)?
    var migration = Migration.idle
    var opened = 0

    init(url: String) { self.url = url }

    /// The carts panel's rows: this session's carts, then the read model's.
    var rows: [Cart] { mine + carts.filter { !myCartIDs.contains($0.cartId) } }
    var selectedCart: Cart? { rows.indices.contains(selected) ? rows[selected] : nil }

    /// The lines of the selected cart, from its events: sku → quantity.
    var lines: [(sku: String, quantity: Int)] {
        var lines: [String: Int] = [:], order: [String] = []
        for event in events {
            guard let object = try? JSONSerialization.jsonObject(with: Data(event.payload.utf8)) as? [String: Any],
                let sku = object["sku"] as? String
            else { continue }
            switch event.type {
            case "ItemAddedToCart", "ItemQuantityChanged":
                if lines[sku] == nil { order.append(sku) }
                lines[sku] = object["quantity"] as? Int ?? 0
            case "ItemRemovedFromCart":
                lines[sku] = nil
                order.removeAll { $0 == sku }
            default: break
            }
        }
        return order.map { ($0, lines[$0] ?? 0) }
    }

    mutating func handle(_ message: Message) -> [Effect] {
        switch message {
        case .key(let key): return handle(key)
        case .tick: return [.refresh(mine: myCartIDs)]
        case .refreshed(let carts, let mine, let readModel):
            let keep = selectedCart?.cartId
            self.carts = carts
            // A refresh that left before a cart was opened does not know it yet: keep what is known.
            let known = self.mine
            self.mine = myCartIDs.compactMap { id in mine.first { $0.cartId == id } ?? known.first { $0.cartId == id } }
            self.readModel = readModel
            if let keep, let index = rows.firstIndex(where: { $0.cartId == keep }) { selected = index }
            selected = min(selected, max(0, rows.count - 1))
            var effects: [Effect] = []
            if let id = selectedCart?.cartId { effects.append(.loadCart(id, after: nil)) }
            return effects + advanceMigration()
        case .cartLoaded(let id, let cart, let events):
            guard id == selectedCart?.cartId else { return [] }
            (cartID, self.cart, self.events) = (id, cart, events)
            return []
        case .products(let products):
            self.products = products
            return []
        case .accepted(let text, let cartId, let position):
            self.message = (text, false)
            if !myCartIDs.contains(cartId) {
                myCartIDs.insert(cartId, at: 0)
                selected = 0
                mine.insert(Cart(cartId: cartId, customer: "…", status: "open", items: 0, totalCents: 0), at: 0)
            }
            return [.loadCart(cartId, after: position), .refresh(mine: myCartIDs)]
        case .buildStarted(let version):
            self.message = ("building v\(version) from the log, beside the serving version", false)
            return []
        case .compared(let comparison):
            guard case .comparing(let target) = migration else { return [] }
            migration = .promoting(target, comparison)
            return [.promote(version: target)]
        case .promoted(let version):
            if case .promoting(_, let comparison) = migration { migration = .done(version, comparison) } else { migration = .done(version, nil) }
            self.message = ("switched: readers now see v\(version)", false)
            return [.refresh(mine: myCartIDs)]
        case .rolledBack(let version):
            migration = .idle
            self.message = ("rolled back: readers see v\(version) again; the newer version keeps following the log", false)
            return [.refresh(mine: myCartIDs)]
        case .failed(let text, let code, let effect):
            switch effect {
            case .build where code == "alreadyRunning":
                return [] // started earlier: watch it
            case .build, .compare, .promote:
                // Only the migration's own requests fail it; a refresh that failed does not.
                switch migration {
                case .building, .comparing, .promoting: migration = .failed(text)
                default: break
                }
            default: break
            }
            self.message = (text, true)
            return []
        }
    }

    private mutating func handle(_ key: Key) -> [Effect] {
        if key == .interrupt { return [.quit] }
        switch overlay {
        case .help:
            if key == .character("q") { return [.quit] }
            overlay = .none
            return []
        case .picker(let adding, let choices, let index):
            switch key {
            case .up: overlay = .picker(adding: adding, choices: choices, selected: max(0, index - 1))
            case .down: overlay = .picker(adding: adding, choices: choices, selected: min(choices.count - 1, index + 1))
            case .enter:
                overlay = .none
                guard let cart = selectedCart?.cartId, choices.indices.contains(index) else { return [] }
                return [adding ? .add(cart: cart, sku: choices[index]) : .remove(cart: cart, sku: choices[index])]
            case .escape, .character("q"): overlay = .none
            default: break
            }
            return []
        case .none:
            break
        }
        let cart = selectedCart?.cartId
        switch key {
        case .up:
            selected = max(0, selected - 1)
            return selectionChanged()
        case .down:
            selected = min(max(0, rows.count - 1), selected + 1)
            return selectionChanged()
        case .character("q"): return [.quit]
        case .character("?"), .character("h"): overlay = .help
        case .character("n"):
            opened += 1
            return [.open(customer: "visitor-\(opened)")]
        case .enter, .character("a"):
            guard cart != nil else {
                message = ("no cart selected: press n to open one", true)
                return []
            }
            guard !products.isEmpty else { return [.loadProducts] }
            overlay = .picker(adding: true, choices: products.map(\.sku), selected: 0)
        case .character("x"):
            guard cart != nil else { return [] }
            let skus = lines.map(\.sku)
            guard !skus.isEmpty else {
                message = ("the cart has no lines to remove", true)
                return []
            }
            overlay = .picker(adding: false, choices: skus, selected: 0)
        case .character("c"): if let cart { return [.checkOut(cart: cart)] }
        case .character("b"): if let cart { return [.abandon(cart: cart)] }
        case .character("m"): return startMigration()
        case .character("r"): return [.rollback]
        default: break
        }
        return []
    }

    private func selectionChanged() -> [Effect] {
        guard let id = selectedCart?.cartId, id != cartID else { return [] }
        return [.loadCart(id, after: nil)]
    }

    private mutating func startMigration() -> [Effect] {
        guard let readModel, let target = readModel.availableVersions.max() else {
            message = ("the read model's status is not loaded yet", true)
            return []
        }
        if readModel.activeVersion == target {
            message = ("v\(target) already serves; r rolls back", true)
            return []
        }
        switch migration {
        case .building, .comparing, .promoting: return []
        default: break
        }
        migration = .building(target)
        message = ("building v\(target) from the log, beside the serving version", false)
        return [.build(version: target)] + advanceMigration()
    }

    /// Moves the migration on when the new version has caught up: compare, then promote.
    private mutating func advanceMigration() -> [Effect] {
        guard case .building(let target) = migration, let readModel,
            let version = readModel.versions.first(where: { $0.version == target }),
            ["caught_up", "retired"].contains(version.lifecycle), version.state == "live", version.lagEvents <= 100
        else { return [] }
        guard let active = readModel.activeVersion, active != target else {
            migration = .promoting(
                target,
                ShopClient.Comparison(
                    oldVersion: 0, newVersion: target, samePosition: true, differingRows: 0, tables: [], tablesOnlyInOld: [], tablesOnlyInNew: []))
            return [.promote(version: target)]
        }
        migration = .comparing(target)
        return [.compare(old: active, new: target)]
    }
}
