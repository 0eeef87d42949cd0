import Foundation
import Kappa
import KappaFixtures
import KappaTesting
import PostgresNIO
import Testing

@testable import KappaPostgres

/// A catch-up analyses the version's tables as it fills them, so that the plans of its prepared
/// statements, made when the tables were empty, are made again for what they hold.
@Suite struct TableStatisticsThresholdTests {
    @Test func analysesAtFiveThousandEventsThenAtEachDoubling() {
        let statistics = TableStatistics()
        var due: [Int] = []
        for batch in 1...45 where statistics.applied(1_000) { due.append(batch * 1_000) }
        #expect(due == [5_000, 10_000, 20_000, 40_000])
    }

    @Test func notWhileFollowingLiveButAtTheNextFullPage() {
        let statistics = TableStatistics()
        #expect(!statistics.applied(6_000, catchingUp: false))
        #expect(statistics.applied(100))
        #expect(!statistics.applied(100))
    }

    @Test func oneRefreshPerThresholdHoweverManyWorkersCount() async {
        let statistics = TableStatistics()
        let due = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<4 { group.addTask { (0..<25).filter { _ in statistics.applied(100) }.count } }
            return await group.reduce(0, +)
        }
        #expect(due == 2) // 10,000 events: at 5,000 and at 10,000
    }
}

@Suite(.serialized) struct TableStatisticsTests {
    @Test(arguments: [false, true]) func aCatchUpAnalysesTheTablesItFills(inBulk: Bool) async throws {
        try await withProjectionFixture { f in
            let last = try await CartEvents.seed(f.store, carts: 120, eventsPerCart: 50)
            let projection = Unvacuumed(base: CartLinesFoldedProjection(name: f.name("stats")))
            var configuration = f.configuration(batchSize: 500)
            configuration.rebuildThreshold = inBulk ? 1 : .max
            configuration.rebuildBatchSize = 500
            let runtime = try f.runtime([projection], configuration: configuration)
            try await withRunning(runtime) {
                try await runtime.waitUntil(projection.name, hasPassed: last, timeout: .seconds(60))
            }
            let counts = try await f.client.query(
                "SELECT relname, analyze_count FROM pg_stat_user_tables WHERE schemaname = \(projection.name + "_v1") ORDER BY relname"
            ).collect().map { try $0.decode((String, Int64).self) }
            // 6,000 events: analysed once, at 5,000 (autovacuum's analyses are counted apart).
            #expect(counts.map(\.0) == ["carts", "lines"])
            #expect(counts.allSatisfy { $0.1 >= 1 }, "\(counts)")
        }
    }
}

/// The folded cart read model with autovacuum off for its tables: an autovacuum analysing one of them
/// at the moment the runtime does would make the runtime's `ANALYZE (SKIP_LOCKED)` skip it.
struct Unvacuumed: Projection {
    let base: CartLinesFoldedProjection
    var name: String { base.name }
    var version: Int { base.version }
    var eventTypes: Set<String>? { base.eventTypes }
    var setupSQL: String {
        base.setupSQL + "ALTER TABLE carts SET (autovacuum_enabled = false); ALTER TABLE lines SET (autovacuum_enabled = false);"
    }
    func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws { try await base.apply(events, in: context) }
}
