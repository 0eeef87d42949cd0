import Foundation

/// The cart service's full-screen terminal front end: carts, the selected cart with its events,
/// the read model's versions, and the migration to a new version (build, compare, switch) and back —
/// all through the service's HTTP API.
public struct Console: Sendable {
    public let url: URL
    /// Sent with the migration's requests (build, compare, promote, rollback); without it the
    /// service refuses them with 401, shown on the status line.
    public let operatorToken: String?
    /// How often the panels are refreshed. Default 500 ms.
    public var refreshInterval: Duration = .milliseconds(500)

    public init(url: URL, operatorToken: String? = nil) {
        self.url = url
        self.operatorToken = operatorToken
    }

    enum Input: Sendable {
        case message(ConsoleState.Message)
        case resize
        case done(ConsoleState.Effect)
    }

    /// Runs until `q` or Ctrl-C; the terminal is put back as it was, whatever happens.
    public func run() async {
        let client = ShopClient(baseURL: url, operatorToken: operatorToken)
        let (inputs, post) = AsyncStream.makeStream(of: Input.self)
        Terminal.enter()
        defer { Terminal.restore() }
        var state = ConsoleState(url: url.absoluteString)
        var screen = Screen()
        var size = Terminal.size()
        var inFlight = Set<String>()
        func draw() { Terminal.write(screen.update(to: ConsoleView.draw(state, size: size).map { $0.rendered(size.columns) }, size: size)) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await key in Terminal.keys() { post.yield(.message(.key(key))) }
                if !Task.isCancelled { post.yield(.message(.key(.interrupt))) } // stdin closed: nothing can quit otherwise
            }
            group.addTask { for await _ in Terminal.resizes() { post.yield(.resize) } }
            let interval = refreshInterval
            group.addTask {
                while !Task.isCancelled {
                    post.yield(.message(.tick))
                    try? await Task.sleep(for: interval)
                }
            }
            func start(_ effects: [ConsoleState.Effect]) -> Bool {
                for effect in effects {
                    if effect == .quit { return false }
                    // One refresh (and one load of a cart) at a time: ticks do not pile up behind a slow answer.
                    let key = Self.coalescingKey(effect)
                    if let key { guard inFlight.insert(key).inserted else { continue } }
                    // Not a child of the group: quitting must not wait for a request (URLSession on
                    // Linux does not cancel one, and a stuck keep-alive connection holds it until its timeout).
                    Task {
                        let message = await Self.perform(effect, client: client)
                        post.yield(.done(effect))
                        post.yield(.message(message))
                    }
                }
                return true
            }
            _ = start([.loadProducts])
            draw()
            loop: for await input in inputs {
                switch input {
                case .resize:
                    size = Terminal.size()
                case .done(let effect):
                    if let key = Self.coalescingKey(effect) { inFlight.remove(key) }
                    continue loop
                case .message(let message):
                    guard start(state.handle(message)) else { break loop }
                }
                draw()
            }
            // The terminal is the user's again at once; requests still on their way are left to end
            // with the process.
            Terminal.restore()
            group.cancelAll()
        }
    }

    static func coalescingKey(_ effect: ConsoleState.Effect) -> String? {
        switch effect {
        case .refresh: "refresh"
        case .loadCart(let id, let after) where after == nil: "cart \(id)"
        default: nil
        }
    }

    /// Makes the request an effect asks for; the answer (or the failure) as a message.
    static func perform(_ effect: ConsoleState.Effect, client: ShopClient) async -> ConsoleState.Message {
        do {
            switch effect {
            case .refresh(let mine):
                let readModel = try await client.readModel()
                let carts = readModel.activeVersion == nil ? [] : try await client.carts(limit: 200)
                var mineCarts: [ShopClient.Cart] = []
                for id in mine { if let cart = try await client.cart(id) { mineCarts.append(cart) } }
                return .refreshed(carts: carts, mine: mineCarts, readModel: readModel)
            case .loadCart(let id, let after):
                return .cartLoaded(id: id, cart: try await client.cart(id, after: after), events: try await client.events(id))
            case .loadProducts:
                return .products(try await client.products())
            case .open(let customer):
                let accepted = try await client.open(customer: customer)
                return .accepted("opened cart \(accepted.cartId.prefix(8)) for \(customer)", cartId: accepted.cartId, position: accepted.position)
            case .add(let cart, let sku):
                let accepted = try await client.add(cart, sku: sku, quantity: 1)
                return .accepted("added 1 × \(sku) (log position \(accepted.position ?? "-"))", cartId: cart, position: accepted.position)
            case .remove(let cart, let sku):
                let accepted = try await client.remove(cart, sku: sku)
                return .accepted("removed \(sku)", cartId: cart, position: accepted.position)
            case .checkOut(let cart):
                let accepted = try await client.checkOut(cart)
                return .accepted("checked out cart \(cart.prefix(8))", cartId: cart, position: accepted.position)
            case .abandon(let cart):
                let accepted = try await client.abandon(cart)
                return .accepted("abandoned cart \(cart.prefix(8))", cartId: cart, position: accepted.position)
            case .build(let version):
                try await client.build(version: version)
                return .buildStarted(version)
            case .compare(let old, let new):
                return .compared(try await client.compare(old: old, new: new))
            case .promote(let version):
                try await client.promote(version: version)
                return .promoted(version)
            case .rollback:
                return .rolledBack(try await client.rollback())
            case .quit:
                return .tick
            }
        } catch let failure as ShopClient.Failure {
            return .failed(failure.message, code: failure.code, effect: effect)
        } catch {
            return .failed("\(error)", code: "error", effect: effect)
        }
    }
}
