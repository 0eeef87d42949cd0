import ArgumentParser
import Foundation
import Kappa
import KappaPostgres
import Logging
import PostgresNIO

/// Fresh tables for one round: the framework's schema, and a plain table of the same shape
/// (`LIKE … INCLUDING ALL`: the same columns, defaults, keys and indexes) for the baselines.
struct AppendTables: Sendable {
    let client: PostgresClient
    let store: PostgresEventStore
    let plain: String
    let logger = quietLogger

    static func make(_ client: PostgresClient, round: Int) async throws -> AppendTables {
        let schema = "kappa_bench_\(round)"
        try await client.query("DROP SCHEMA IF EXISTS \(unescaped: schema) CASCADE")
        try await client.query("DROP TABLE IF EXISTS public.kappa_bench_plain")
        var configuration = PostgresEventStore.Configuration(schema: schema)
        // KAPPA_BENCH_HELD_CONNECTIONS: the store's held append connections (0: a pool lease per append).
        if let held = ProcessInfo.processInfo.environment["KAPPA_BENCH_HELD_CONNECTIONS"].flatMap(Int.init) {
            configuration.heldAppendConnections = held
        }
        // KAPPA_BENCH_APPENDS_IN_FLIGHT: the store's appendsInFlight (default 1).
        if let inFlight = ProcessInfo.processInfo.environment["KAPPA_BENCH_APPENDS_IN_FLIGHT"].flatMap(Int.init) {
            configuration.appendsInFlight = inFlight
        }
        // KAPPA_BENCH_APPEND_LIBPQ=0: no libpq append connections (appendConnectionString unset).
        if ProcessInfo.processInfo.environment["KAPPA_BENCH_APPEND_LIBPQ"] != "0" {
            configuration.appendConnectionString = BenchDatabase.connectionString
        }
        let store = try PostgresEventStore(client: client, configuration: configuration, logger: quietLogger)
        try await store.migrate()
        // In `public`, so COPY (which quotes the name it is given as one identifier) finds it unqualified;
        // one name for every round, as the prepared baseline's SQL is fixed.
        try await client.query("CREATE TABLE public.kappa_bench_plain (LIKE \(unescaped: schema).events INCLUDING ALL)")
        // The log's hash chain is filled in by its trigger, which LIKE does not copy: the baselines
        // write the row without it (what the chain costs is `append-chain`'s figure).
        try await client.query("ALTER TABLE public.kappa_bench_plain ALTER COLUMN event_hash DROP NOT NULL")
        try await client.query("CHECKPOINT")
        return AppendTables(client: client, store: store, plain: "kappa_bench_plain")
    }

    func drop() async throws {
        try await client.query("DROP SCHEMA \(unescaped: store.configuration.schema) CASCADE")
        try await client.query("DROP TABLE public.\(unescaped: plain)")
    }

    /// Writer `w`'s operation `i` goes to stream `bench-w-(i / 50)`, so streams have 50 transactions each.
    private func stream(_ writer: Int, _ index: Int) -> (String, Int64) {
        ("bench-\(writer)-\(index / 50)", Int64(index % 50))
    }

    /// pgbench (libpq, C, prepared) inserting the same single rows into the plain table, as many
    /// clients as writers: the most a client can append one row a transaction on this server.
    /// With `logTable`, into the log's own events table instead, its triggers (the order key's, the
    /// hash chain's) firing as for an append: the server's whole work for the row, the client's least.
    func pgbench(_ c: AppendBenchmark.Case, payload: Data, logTable: Bool = false) async throws -> Double? {
        guard c.batchSize == 1 else { return nil }
        let table = logTable ? "\(store.configuration.schema).events" : "public.\(plain)"
        let json = String(decoding: payload, as: UTF8.self).replacingOccurrences(of: "'", with: "''")
        let script = FileManager.default.temporaryDirectory.appending(path: "kappa-bench-append-\(getpid()).sql")
        try """
        \\set n random(1, 2000000000)
        INSERT INTO \(table) (event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at)
        VALUES (gen_random_uuid(), 'pgbench-' || :client_id || '-' || :n, 1, 'ItemAddedToCart', 1, '\(json)'::json, '{}'::json, now());
        """.write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "pgbench", "-n", "-M", "prepared", "-c", "\(c.writers)", "-j", "\(min(c.writers, 2))", "-t", "\(c.operations)", "-f", script.path,
        ]
        var environment = ProcessInfo.processInfo.environment
        if environment["PGHOST"]?.hasPrefix("/") ?? true { environment["PGHOST"] = "localhost" } // TCP, as the other clients
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // "tps = 5123.4 (without initial connection time)"
        guard process.terminationStatus == 0,
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") && $0.contains("without initial") }),
            let rate = Double(line.dropFirst(6).prefix { $0 != " " })
        else { throw ValidationError("pgbench failed: \(text)") }
        return rate
    }

    /// The store running as a service would (``PostgresEventStore/run()``: its connections held for appends).
    func kappa(_ c: AppendBenchmark.Case, payload: Data) async throws -> Double {
        let store = self.store
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await store.run() }
            defer { group.cancelAll() }
            let held = store.configuration.heldAppendConnections, libpq = store.configuration.appendConnectionString == nil ? 0 : held
            while store.heldConnections.count < held || store.libpqConnections.idleCount < libpq { try await Task.sleep(for: .milliseconds(1)) }
            return try await measure(writers: c.writers, perWriter: c.operations) { writer, index in
                let (name, transactions) = stream(writer, index)
                let events = (0..<c.batchSize).map { _ in
                    NewEvent(id: UUID(), eventType: "ItemAddedToCart", schemaVersion: 1, payload: payload, recordedAt: Date())
                }
                _ = try await store.append(events, to: StreamID(name), expectedVersion: .exact(transactions * Int64(c.batchSize)))
            } * Double(c.batchSize)
        }
    }

    func plainSQL(_ c: AppendBenchmark.Case, payload: Data) async throws -> Double {
        let client = self.client, plain = self.plain
        let json = String(decoding: payload, as: UTF8.self)
        return try await measure(writers: c.writers, perWriter: c.operations) { writer, index in
            let (name, transactions) = stream(writer, index)
            let first = transactions * Int64(c.batchSize) + 1
            if c.batchSize == 1 {
                try await client.query(
                    """
                    INSERT INTO \(unescaped: plain) (event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at)
                    VALUES (\(UUID()), \(name), \(first), 'ItemAddedToCart', 1, \(json)::json, '{}'::json, \(Date()))
                    """)
            } else {
                // Every per-event column sent per row, as the framework must: no constant shortcuts.
                let n = c.batchSize
                try await client.query(
                    """
                    INSERT INTO \(unescaped: plain) (event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at)
                    SELECT e.id, \(name), \(first) + e.n - 1, e.type, e.sv, e.payload, e.metadata, e.at
                    FROM unnest(\((0..<n).map { _ in UUID() })::uuid[], \(Array(repeating: "ItemAddedToCart", count: n))::text[],
                                \(Array(repeating: Int32(1), count: n))::int4[], \(Array(repeating: json, count: n))::json[],
                                \(Array(repeating: "{}", count: n))::json[], \(Array(repeating: Date(), count: n))::timestamptz[])
                        WITH ORDINALITY AS e(id, type, sv, payload, metadata, at, n)
                    """)
            }
        } * Double(c.batchSize)
    }

    /// The plain INSERTs of ``plainSQL(_:payload:)`` as prepared statements (parsed and planned once per connection).
    func preparedSQL(_ c: AppendBenchmark.Case, payload: Data) async throws -> Double {
        let client = self.client, logger = self.logger
        let json = String(decoding: payload, as: UTF8.self)
        return try await measure(writers: c.writers, perWriter: c.operations) { writer, index in
            let (name, transactions) = stream(writer, index)
            let first = transactions * Int64(c.batchSize) + 1
            if c.batchSize == 1 {
                for try await _ in try await client.execute(PlainInsert(stream: name + "-p", version: first, payload: json), logger: logger) {}
            } else {
                for try await _ in try await client.execute(
                    PlainInsertBatch(stream: name + "-p", first: first, count: c.batchSize, payload: json), logger: logger)
                {}
            }
        } * Double(c.batchSize)
    }

    func copy(_ c: AppendBenchmark.Case, payload: Data) async throws -> Double {
        let client = self.client, plain = self.plain, logger = self.logger
        let json = String(decoding: payload, as: UTF8.self)
        let stamp = ISO8601DateFormatter().string(from: Date())
        return try await measure(writers: c.writers, perWriter: c.operations) { writer, index in
            let (name, transactions) = stream(writer, index)
            let first = transactions * Int64(c.batchSize) + 1
            var text = ""
            for n in 0..<Int64(c.batchSize) {
                text += "\(UUID())\t\(name)-copy\t\(first + n)\tItemAddedToCart\t1\t\(json)\t{}\t\(stamp)\n"
            }
            var buffer = ByteBuffer()
            buffer.writeString(text)
            try await client.withConnection { connection in
                try await connection.copyFrom(
                    table: plain,
                    columns: ["event_id", "stream_id", "stream_version", "event_type", "schema_version", "payload", "metadata", "recorded_at"],
                    logger: logger
                ) { writer in try await writer.write(buffer) }
            }
        } * Double(c.batchSize)
    }
}

/// One row into the plain table, prepared.
struct PlainInsert: PostgresPreparedStatement {
    static let sql = """
        INSERT INTO public.kappa_bench_plain (event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at)
        VALUES ($1, $2, $3, $4, $5, $6::json, $7::json, $8)
        """
    typealias Row = ()
    let stream: String, version: Int64, payload: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 8)
        bindings.append(UUID())
        bindings.append(stream)
        bindings.append(version)
        bindings.append("ItemAddedToCart")
        bindings.append(Int32(1))
        bindings.append(payload)
        bindings.append("{}")
        bindings.append(Date())
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {}
}

/// A batch into the plain table, prepared: every per-event column sent per row, as in ``AppendTables/plainSQL(_:payload:)``.
struct PlainInsertBatch: PostgresPreparedStatement {
    static let sql = """
        INSERT INTO public.kappa_bench_plain (event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at)
        SELECT e.id, $1, $2 + e.n - 1, e.type, e.sv, e.payload::json, e.metadata::json, e.at
        FROM unnest($3::uuid[], $4::text[], $5::int4[], $6::text[], $7::text[], $8::timestamptz[])
            WITH ORDINALITY AS e(id, type, sv, payload, metadata, at, n)
        """
    typealias Row = ()
    let stream: String, first: Int64, count: Int, payload: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 8)
        bindings.append(stream)
        bindings.append(first)
        bindings.append((0..<count).map { _ in UUID() })
        bindings.append(Array(repeating: "ItemAddedToCart", count: count))
        bindings.append(Array(repeating: Int32(1), count: count))
        bindings.append(Array(repeating: payload, count: count))
        bindings.append(Array(repeating: "{}", count: count))
        bindings.append(Array(repeating: Date(), count: count))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {}
}
