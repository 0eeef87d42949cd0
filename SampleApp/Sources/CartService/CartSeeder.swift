import CartDomain
import Foundation
import Kappa
import KappaPostgres
import Logging

/// Appends a generated shop history (``ShopHistory``) to the log: a chunk of carts per transaction,
/// several transactions at once. Idempotent: the event ids come from the seed, so seeding the same
/// carts again appends nothing.
public struct CartSeeder: Sendable {
    public struct Outcome: Sendable {
        /// Carts whose events were appended now (not already in the log).
        public var cartsAppended: Int
        public var eventsAppended: Int
        /// The position of the last event appended (the highest), if any was.
        public var lastPosition: LogPosition?
        public var elapsed: Duration
    }

    public let store: PostgresEventStore
    public let history: ShopHistory
    /// Carts per transaction. Default 50.
    public var cartsPerChunk = 50
    /// Transactions at once. Default 4.
    public var concurrency = 4

    public init(store: PostgresEventStore, history: ShopHistory) {
        self.store = store
        self.history = history
    }

    /// Appends carts `0..<carts`, calling `progress(cartsDone, elapsed)` after each transaction.
    public func seed(carts: Int, progress: @escaping @Sendable (Int, Duration) -> Void = { _, _ in }) async throws -> Outcome {
        let started = ContinuousClock.now
        let chunks = stride(from: 0, to: carts, by: cartsPerChunk).map { $0..<min(carts, $0 + cartsPerChunk) }
        var outcome = Outcome(cartsAppended: 0, eventsAppended: 0, lastPosition: nil, elapsed: .zero)
        var done = 0
        try await withThrowingTaskGroup(of: (carts: Int, appended: Int, events: Int, last: LogPosition?).self) { group in
            var next = chunks.makeIterator()
            for _ in 0..<max(1, concurrency) { if let chunk = next.next() { group.addTask { try await append(chunk) } } }
            while let result = try await group.next() {
                done += result.carts
                outcome.cartsAppended += result.appended
                outcome.eventsAppended += result.events
                if let last = result.last, last > outcome.lastPosition ?? .start { outcome.lastPosition = last }
                progress(done, ContinuousClock.now - started)
                if let chunk = next.next() { group.addTask { try await append(chunk) } }
            }
        }
        outcome.elapsed = ContinuousClock.now - started
        return outcome
    }

    private func append(_ carts: Range<Int>) async throws -> (carts: Int, appended: Int, events: Int, last: LogPosition?) {
        let batch = try carts.map { index in
            let (id, events) = history.cart(index)
            let encoded = try events.enumerated().map { number, item in
                try CartEvent.registry.encode(item.event, id: history.eventID(cart: index, number: number), recordedAt: item.at)
            }
            return (stream: try Cart.stream(id), events: encoded)
        }
        let carts = batch.filter { !$0.events.isEmpty }
        // Fast path: the chunk's carts in one transaction. A cart already in the log (a second seed)
        // fails the transaction as a whole; then each cart is appended on its own, which returns the
        // original positions of what is there and appends the rest.
        do {
            let positions = try await store.withTransaction { transaction in
                var last: LogPosition?
                for cart in carts {
                    let result = try await transaction.append(cart.events, to: cart.stream, expectedVersion: .noStream)
                    if let position = result.positions.last, position > last ?? .start { last = position }
                }
                return last
            }
            return (batch.count, carts.count, carts.reduce(0) { $0 + $1.events.count }, positions)
        } catch let error as EventStoreError where error.code == .versionConflict || error.code == .duplicateEventID {
            var appended = 0, events = 0, last: LogPosition?
            for cart in carts {
                let result = try await store.append(cart.events, to: cart.stream, expectedVersion: .noStream)
                if !result.wasAlreadyAppended {
                    appended += 1
                    events += cart.events.count
                    if let position = result.positions.last, position > last ?? .start { last = position }
                }
            }
            return (batch.count, appended, events, last)
        }
    }
}
