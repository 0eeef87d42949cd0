import ArgumentParser
import CartDomain
import CartService
import Foundation
import KappaCLI
import KappaPostgres
import Logging
import PostgresNIO

/// `cart-app seed`: appends a generated, believable shop history to the log.
struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append a generated shop history to the log, for demos and benchmarks.",
        discussion: """
            Carts are opened over the last --days days, filled with 1 to 6 products, sometimes changed, then \
            about 65% checked out, 20% abandoned and 15% left open — every event decided by the cart's own \
            rules. The same --seed gives the same history; seeding the same carts again appends nothing. \
            About 5.7 events per cart: 10,000 carts are about 57,000 events, 100,000 carts about 572,000.
            """)

    @Option(help: "How many carts.") var carts = 10_000
    @Option(help: "The generator's seed: the same seed, the same history.") var seed: UInt64 = 42
    @Option(help: "Days of history, ending now.") var days = 30
    @Option(help: "PostgreSQL URL (env KAPPA_DATABASE_URL; default: the PG* variables, else postgres@localhost:5432/postgres).")
    var databaseURL: String?
    @Option(help: "Schema of the event log (env KAPPA_LOG_SCHEMA; default kappa).") var logSchema: String?

    func validate() throws {
        guard carts >= 0 else { throw ValidationError("--carts must be 0 or more") }
        guard days >= 1 else { throw ValidationError("--days must be at least 1") }
    }

    func run() async throws {
        var logger = Logger(label: "kappa.cart.seed")
        logger.logLevel = .error
        let client = PostgresClient(configuration: try DatabaseURL.configuration(url: databaseURL), backgroundLogger: logger)
        let schema = logSchema ?? ProcessInfo.processInfo.environment["KAPPA_LOG_SCHEMA"] ?? "kappa"
        let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: logger)
        // A fixed start for a given day, so a re-run the same day appends nothing.
        let today = Calendar(identifier: .gregorian).startOfDay(for: Date())
        let history = ShopHistory(seed: seed, start: today.addingTimeInterval(-Double(days) * 86_400), days: days)
        let (carts, bar) = (self.carts, ProgressBar())
        let outcome = try await withThrowingTaskGroup(of: CartSeeder.Outcome?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            defer { group.cancelAll() }
            _ = try await store.migrate()
            return try await CartSeeder(store: store, history: history).seed(carts: carts) { done, elapsed in
                bar.update(.init(label: "seed", done: done, total: carts, unit: "carts", elapsed: elapsed))
            }
        }
        bar.finish()
        let seconds = Double(outcome.elapsed.components.seconds) + Double(outcome.elapsed.components.attoseconds) / 1e18
        print(
            "seeded \(outcome.cartsAppended) carts (\(outcome.eventsAppended) events) in \(String(format: "%.1f", seconds)) s"
                + (outcome.cartsAppended < carts ? "; \(carts - outcome.cartsAppended) were already in the log" : ""))
    }
}
