import Foundation
import PostgresNIO

extension PartitionedLogBenchmark {
    typealias Operation = @Sendable (PostgresClient, String) async throws -> String

    /// Each measured operation: a label, and what it prints for a table.
    func operations(streams: Int) -> [(String, Operation)] {
        let samples = samples, months = months
        // The same pseudo-random streams and log points on both tables.
        @Sendable func stream(_ n: Int) -> Int { (n &* 7_919 &+ 13) % streams }
        let newStream = "INSERT INTO %@ (event_id, stream_id, stream_version, event_type, schema_version, payload, recorded_at, event_hash) "
        return [
            (
                "append, new stream, 1 writer (ev/s)",
                { client, table in
                    let sql = newStream.replacingOccurrences(of: "%@", with: table)
                    return formatRate(
                        try await measure(writers: 1, perWriter: samples) { _, index in
                            try await client.query(
                                PostgresQuery(
                                    unsafeSQL: sql + "VALUES (gen_random_uuid(), $1, 1, 'CartOpened', 1, '{}', now(), sha256('x'))",
                                    binds: try binds("new-\(table)-1-\(index)"))
                            )
                        })
                }
            ),
            (
                "append, new stream, 8 writers (ev/s)",
                { client, table in
                    let sql = newStream.replacingOccurrences(of: "%@", with: table)
                    return formatRate(
                        try await measure(writers: 8, perWriter: samples / 4) { writer, index in
                            try await client.query(
                                PostgresQuery(
                                    unsafeSQL: sql + "VALUES (gen_random_uuid(), $1, 1, 'CartOpened', 1, '{}', now(), sha256('x'))",
                                    binds: try binds("new-\(table)-8-\(writer)-\(index)"))
                            )
                        })
                }
            ),
            (
                "append, existing stream, 8 writers (ev/s)",
                { client, table in
                    // The next version read by the insert itself: what an expected-version check reads.
                    let sql =
                        newStream.replacingOccurrences(of: "%@", with: table)
                        + "SELECT gen_random_uuid(), $1, coalesce(max(stream_version), 0) + 1, 'ItemAddedToCart', 1, '{}', now(), sha256('x') FROM \(table) WHERE stream_id = $1"
                    return formatRate(
                        try await measure(writers: 8, perWriter: samples / 4) { writer, index in
                            try await client.query(PostgresQuery(unsafeSQL: sql, binds: try binds("cart-\(stream(writer * samples + index))")))
                        })
                }
            ),
            (
                "read a stream (ms, p50 / p99)",
                { client, table in
                    try await latencies(samples) { n in
                        try await drain(client, "SELECT * FROM \(table) WHERE stream_id = $1 ORDER BY stream_version", "cart-\(stream(n))")
                    }
                }
            ),
            (
                "read a stream, its month known (ms)",
                { client, table in
                    // A stream's events lie within its first event's month and the next: they bound the read, as a
                    // stream id that carries its start (a UUIDv7, a dated key) would let a store do.
                    // The month is found first (not timed) and bound, so the planner prunes to it.
                    var windows: [(Date, Date)] = []
                    for n in 0..<samples {
                        let start =
                            "now() - interval '\(months) months' + (interval '\(months) months' - interval '1 hour') * (\(stream(n) / 10 * 200)::float8 / \(streams * 20))"
                        for try await bounds in try await client.query(
                            PostgresQuery(unsafeSQL: "SELECT date_trunc('month', \(start)), date_trunc('month', \(start)) + interval '2 months'")
                        ).decode((Date, Date).self) { windows.append(bounds) }
                    }
                    let bounds = windows
                    return try await latencies(samples) { n in
                        var values = PostgresBindings()
                        values.append("cart-\(stream(n))", context: .default)
                        values.append(bounds[n].0, context: .default)
                        values.append(bounds[n].1, context: .default)
                        let sql = "SELECT * FROM \(table) WHERE stream_id = $1 AND recorded_at >= $2 AND recorded_at < $3 ORDER BY stream_version"
                        for try await _ in try await client.query(PostgresQuery(unsafeSQL: sql, binds: values)) {}
                    }
                }
            ),
            (
                "find an event by id (ms)",
                { client, table in
                    // The ids of events spread over the log, read by position from the plain table.
                    let positions = (0..<samples).map { Int64(stream($0) * 20 + 1) }
                    var ids: [UUID] = []
                    for try await id in try await client.query(
                        PostgresQuery(
                            unsafeSQL: "SELECT event_id FROM \(PartitionedLogBenchmark.schema).plain WHERE position = ANY($1)", binds: try binds(positions))
                    ).decode(UUID.self) { ids.append(id) }
                    let found = ids
                    return try await latencies(found.count) { n in
                        try await drain(client, "SELECT position FROM \(table) WHERE event_id = $1", found[n])
                    }
                }
            ),
            (
                "1,000 events in log order (ms)",
                { client, table in
                    try await latencies(samples / 10) { n in
                        let position = Int64(stream(n) * 20)
                        try await drain(
                            client,
                            "SELECT * FROM \(table) WHERE (transaction_id, position) > ((1000 + $1 / 10)::text::xid8, $1) ORDER BY transaction_id, position LIMIT 1000",
                            position)
                    }
                }
            ),
        ]
    }
}

private func binds(_ value: some PostgresEncodable & Sendable) throws -> PostgresBindings {
    var bindings = PostgresBindings()
    try bindings.append(value, context: .default)
    return bindings
}

/// Runs the query and reads every row.
private func drain(_ client: PostgresClient, _ sql: String, _ value: some PostgresEncodable & Sendable) async throws {
    for try await _ in try await client.query(PostgresQuery(unsafeSQL: sql, binds: try binds(value))) {}
}

/// Runs `operation` `count` times in turn; "p50 / p99" in milliseconds.
private func latencies(_ count: Int, _ operation: (Int) async throws -> Void) async throws -> String {
    let clock = ContinuousClock()
    var samples: [Double] = []
    for n in 0..<count { samples.append(try await clock.measure { try await operation(n) }.seconds * 1_000) }
    guard !samples.isEmpty else { return "-" }
    samples.sort()
    return String(format: "%.2f / %.2f", samples[samples.count / 2], samples[min(samples.count - 1, samples.count * 99 / 100)])
}
