import Foundation
import KappaFixtures
import KappaPostgres
import KappaTesting
import Metrics
import MetricsTestKit
import Testing

/// The test process's metrics backend, bootstrapped once (swift-metrics allows one bootstrap per
/// process); each test reads only the metrics of its own projection's dimensions.
let testMetrics: TestMetrics = {
    let metrics = TestMetrics()
    MetricsSystem.bootstrap(metrics)
    return metrics
}()

@Suite("Projection metrics")
struct ProjectionMetricsTests {
    @Test func eventsBatchDurationAndLagAreRecordedPerProjection() async throws {
        let metrics = testMetrics
        try await withProjectionFixture { f in
            let seeded = try await CartEvents.seed(f.store, carts: 10, eventsPerCart: 10)
            let projection = CartSummaryProjection(name: f.name("carts"))
            let runtime = try f.runtime([projection])
            let dimensions = [("projection", projection.name), ("version", "1")]
            try await withRunning(runtime) {
                try await runtime.waitUntil(projection.name, hasPassed: seeded, timeout: .seconds(30))
                // Caught up: the next read comes back empty and the lag goes to 0.
                try await eventually("the lag reads 0") { (try? metrics.expectGauge("kappa_projection_lag_seconds", dimensions))?.lastValue == 0 }
            }
            #expect(try metrics.expectCounter("kappa_projection_events_total", dimensions).totalValue == 100)
            let batches = try metrics.expectTimer("kappa_projection_batch_duration_seconds", dimensions).values
            #expect(!batches.isEmpty && batches.allSatisfy { $0 > 0 })
            // While it applied the seeded events, they were some milliseconds old.
            #expect(try metrics.expectGauge("kappa_projection_lag_seconds", dimensions).values.contains { $0 > 0 })
        }
    }
}
