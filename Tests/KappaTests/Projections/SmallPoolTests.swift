import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// A runtime whose pool has fewer connections than it runs versions: every version still sets up,
/// catches up, is promoted and follows. A connection held while waiting for another would hang it
/// (the first version of each projection made active, counting the log inside its transaction).
@Suite(.serialized) struct SmallPoolTests {
    @Test(.timeLimit(.minutes(1)), arguments: [true, false]) func sixVersionsShareAPoolOfTwoConnections(pipelined: Bool) async throws {
        try await withProjectionFixture { f in
            var small = TestDatabase.configuration()
            small.options.maximumConnections = 2
            try await TestDatabase.withClient(configuration: small) { client in
                let store = try PostgresEventStore(client: client, configuration: f.store.configuration, logger: testLogger)
                let projections = (0..<6).map { CartLinesProjection(name: f.name("pool\($0)")) }
                let runtime = try ProjectionRuntime(
                    log: store, readModels: client, projections: projections, notifier: f.notifier,
                    configuration: f.configuration(pipelined: pipelined), logger: testLogger)
                try await withRunning(runtime) {
                    var last = LogPosition.start
                    for cart in 0..<12 {
                        last = try await f.store.append([CartEvents.added(cart: cart)], to: StreamID("cart-\(cart)"), expectedVersion: .noStream).lastPosition!
                    }
                    for projection in projections { try await runtime.waitUntil(projection.name, hasPassed: last, timeout: .seconds(30)) }
                }
            }
        }
    }
}
