import ArgumentParser
import Foundation
import PostgresNIO

struct PartitionedLogBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partitioned",
        abstract: "What partitioning the log by time (pg_partman, monthly) does to appends and reads at a log of 20M events.",
        discussion: """
            Writes the same --events events (the events table's columns, 20 events a \
            stream, ten streams interleaved, spread evenly over --months months up to \
            now) into two tables:
              plain   as the log is stored today: one table, unique (event_id) and \
            (stream_id, stream_version), the log-order index
              parted  partitioned by recorded_at, one partition a month made by \
            pg_partman; a partitioned table's unique indexes must hold the partition \
            key, so the stream's index is not unique and event ids are unique only \
            within a month
            Then, on each, measures: appends of a new stream's first event (1 and 8 \
            writers, one statement and one transaction each); appends to an existing \
            stream (its next version found by the same statement, as an expected-version \
            check needs); reads of a whole stream, with and without the stream's month; \
            a lookup by event id (what an idempotent retry does); a page of 1,000 \
            events in log order from a random point. Needs pg_partman (Debian's \
            postgresql-15-partman; scripts/bench installs it). Writing 20M events twice \
            takes 10–15 minutes on 2 cores.
            """
    )

    @Option(help: "Events in each table.") var events = 20_000_000
    @Option(help: "Months the events span, one partition each.") var months = 24
    @Option(help: "Operations per measurement.") var samples = 2_000
    @Flag(help: "Measure the tables an earlier run left (bench_partitioned), without writing them again.") var reuse = false

    static let schema = "bench_partitioned"

    func run() async throws {
        try await BenchDatabase.withClient(connections: 9) { client in
            emit("server: \(try await BenchDatabase.settings(client))")
            if !reuse {
                let (plain, parted) = try await load(client)
                emit(String(format: "written: plain %.0f s, parted %.0f s (%ld partitions)", plain.seconds, parted.seconds, try await partitions(client)))
            }
            for table in ["plain", "parted"] {
                // A partitioned table's own size is 0: its partitions hold the rows.
                let size = try await Self.text(
                    client,
                    table == "plain"
                        ? "SELECT pg_size_pretty(pg_total_relation_size('\(Self.schema).plain'))"
                        : "SELECT pg_size_pretty(sum(pg_total_relation_size(relid))) FROM pg_partition_tree('\(Self.schema).parted') WHERE isleaf")
                emit("\(table): \(events) events, \(size) with indexes")
            }
            emit("                                               plain           parted")
            for (label, operation) in operations(streams: events / 20) {
                var figures: [String] = []
                for table in ["plain", "parted"] { figures.append(try await operation(client, "\(Self.schema).\(table)")) }
                emit(
                    "  \(label.padding(toLength: 44, withPad: " ", startingAt: 0)) \(figures[0].padding(toLength: 15, withPad: " ", startingAt: 0)) \(figures[1])"
                )
            }
        }
    }

    private func partitions(_ client: PostgresClient) async throws -> Int {
        Int(try await FleetBenchmark.single(client, "SELECT count(*) FROM pg_partition_tree('\(Self.schema).parted') WHERE isleaf"))
    }

    static func text(_ client: PostgresClient, _ sql: String) async throws -> String {
        for try await value in try await client.query(PostgresQuery(unsafeSQL: sql)).decode(String?.self) { return value ?? "" }
        return ""
    }
}
