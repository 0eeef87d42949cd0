import Foundation
import Kappa
import KappaPostgres
import Logging
import PostgresNIO

/// The driver benchmark's tables and statements: a single-row append of the log's shape, and a live
/// batch of a two-table cart read model with its fenced checkpoint.
enum DriverWorkload {
    static let setUp: [PostgresQuery] = [
        "DROP TABLE IF EXISTS driver_events, driver_carts, driver_lines, driver_checkpoint",
        """
        CREATE TABLE driver_events (
            position bigserial PRIMARY KEY, event_id uuid NOT NULL, stream_id text NOT NULL, stream_version bigint NOT NULL,
            event_type text NOT NULL, payload json NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (stream_id, stream_version))
        """,
        "CREATE TABLE driver_carts (cart_id bigint PRIMARY KEY, items bigint NOT NULL, total_cents bigint NOT NULL)",
        "CREATE TABLE driver_lines (cart_id bigint, sku text, quantity bigint NOT NULL, PRIMARY KEY (cart_id, sku))",
        "CREATE TABLE driver_checkpoint (name text PRIMARY KEY, position bigint NOT NULL, token bigint NOT NULL)",
        "INSERT INTO driver_checkpoint VALUES ('bench', 0, 1)",
    ]

    static let append = "INSERT INTO driver_events (event_id, stream_id, stream_version, event_type, payload) VALUES ($1::uuid, $2, 1, 'ItemAdded', $3::json)"
    /// The batch's four statements, in order, each with its parameters for operation `index`.
    static let batch: [(sql: String, parameters: @Sendable (Int) -> [String])] = [
        (
            """
            INSERT INTO driver_carts (cart_id, items, total_cents) VALUES ($1::bigint, 1, $2::bigint)
            ON CONFLICT (cart_id) DO UPDATE SET total_cents = driver_carts.total_cents + excluded.total_cents
            """, { ["\(cart($0))", "1450"] }
        ),
        (
            """
            INSERT INTO driver_lines (cart_id, sku, quantity) VALUES ($1::bigint, $2, 1)
            ON CONFLICT (cart_id, sku) DO UPDATE SET quantity = driver_lines.quantity + 1
            """, { ["\(cart($0))", "SKU-\($0 % 7)"] }
        ),
        (
            "UPDATE driver_carts c SET items = (SELECT sum(quantity) FROM driver_lines l WHERE l.cart_id = c.cart_id) WHERE cart_id = $1::bigint",
            { ["\(cart($0))"] }
        ),
        ("UPDATE driver_checkpoint SET position = $1::bigint WHERE name = 'bench' AND token = $2::bigint", { ["\($0)", "1"] }),
    ]
    static let payload = #"{"sku":"MUG","quantity":1,"priceCents":1450}"#

    static func cart(_ index: Int) -> Int { (index & Int.max) % 1_000 }

    /// A stream id no other operation of the run uses.
    static func stream(_ client: String, _ index: Int) -> String { "\(client)-\(index)" }

    // MARK: postgres-nio

    /// A pool lease and an unprepared statement per query, as the framework's appends and batches run today.
    static func appendNIO(_ client: PostgresClient) -> @Sendable (Int) async throws -> Void {
        { index in
            var bindings = PostgresBindings(capacity: 3)
            bindings.append(UUID())
            bindings.append(stream("nio", index))
            bindings.append(payload)
            try await client.query(PostgresQuery(unsafeSQL: append, binds: bindings))
        }
    }

    static func batchNIO(_ client: PostgresClient) -> @Sendable (Int) async throws -> Void {
        { index in
            try await client.withConnection { connection in
                try await connection.query("BEGIN", logger: logger)
                for statement in batch {
                    try await connection.query(query(statement.sql, statement.parameters(index)), logger: logger)
                }
                try await connection.query("COMMIT", logger: logger)
            }
        }
    }

    static func appendPrepared(_ connection: PostgresConnection) -> @Sendable (Int) async throws -> Void {
        { index in _ = try await connection.execute(DriverAppend(parameters: [UUID().uuidString, stream("prepared", index), payload]), logger: logger) }
    }

    /// The prepared append on a pooled connection: a lease per append, as the event store's appends run.
    static func appendPooledPrepared(_ client: PostgresClient, guarded: Bool, tag: String) -> @Sendable (Int) async throws -> Void {
        { index in
            let statement = DriverAppend(parameters: [UUID().uuidString, stream(tag, index), payload])
            try await client.withConnection { connection in
                if guarded {
                    // Under the event store's guard against a connection that closes under a query.
                    _ = try await ConnectionGuard.shared.run(on: connection) { try await connection.execute(statement, logger: logger) }
                } else {
                    _ = try await connection.execute(statement, logger: logger)
                }
            }
        }
    }

    /// The event store's own append of one event to a new stream (its log has the triggers too: compare the client's CPU).
    static func appendStore(_ store: PostgresEventStore, tag: String) -> @Sendable (Int) async throws -> Void {
        let event = NewEvent(id: UUID(), eventType: "ItemAddedToCart", schemaVersion: 1, payload: Data(payload.utf8), recordedAt: Date())
        return { index in
            var next = event
            next.id = UUID()
            _ = try await store.append([next], to: StreamID(stream(tag, index)), expectedVersion: .noStream)
        }
    }

    /// The prepared append through libpq, sent from the calling task and finished by the reactor's thread.
    static func appendReactor(_ connection: ReactorConnection) -> @Sendable (Int) async throws -> Void {
        { index in
            var parameters = LibPQParameters(capacity: 3)
            parameters.append(UUID().uuidString)
            parameters.append(stream("reactor", index))
            parameters.append(payload)
            try await connection.execute(prepared: "append", parameters) { _ in }
        }
    }

    static func batchPrepared(_ connection: PostgresConnection) -> @Sendable (Int) async throws -> Void {
        { index in
            try await connection.query("BEGIN", logger: logger)
            _ = try await connection.execute(DriverCart(parameters: batch[0].parameters(index)), logger: logger)
            _ = try await connection.execute(DriverLine(parameters: batch[1].parameters(index)), logger: logger)
            _ = try await connection.execute(DriverTotals(parameters: batch[2].parameters(index)), logger: logger)
            _ = try await connection.execute(DriverCheckpoint(parameters: batch[3].parameters(index)), logger: logger)
            try await connection.query("COMMIT", logger: logger)
        }
    }

    static func query(_ sql: String, _ parameters: [String]) -> PostgresQuery {
        var bindings = PostgresBindings(capacity: parameters.count)
        for parameter in parameters { bindings.append(parameter) }
        return PostgresQuery(unsafeSQL: sql, binds: bindings)
    }

    static let logger = Logger(label: "kappa.bench.driver")

    // MARK: libpq

    /// The same through libpq: the append and the batch one statement at a time, then the batch as a
    /// pipeline. Blocks the calling thread.
    static func libpq(operations: Int) throws -> [DriverResult] {
        let connection = try LibPQConnection()
        try connection.prepare("append", append)
        for (number, statement) in batch.enumerated() { try connection.prepare("batch\(number)", statement.sql) }
        let statements = { (index: Int) in batch.enumerated().map { (name: "batch\($0.offset)", parameters: $0.element.parameters(index)) } }
        let steps: [(String, String, (Int) throws -> Void)] = [
            ("append", "libpq, prepared", { try connection.execute(prepared: "append", [UUID().uuidString, stream("libpq", $0), payload]) }),
            (
                "batch", "libpq, prepared",
                { index in
                    try connection.execute("BEGIN")
                    for statement in statements(index) { try connection.execute(prepared: statement.name, statement.parameters) }
                    try connection.execute("COMMIT")
                }
            ),
            ("batch", "libpq, prepared, pipelined", { try connection.transaction(pipelined: statements($0)) }),
        ]
        var results: [DriverResult] = []
        for (number, (operation, client, step)) in steps.enumerated() {
            // Negative, distinct indexes for the warm-up: stream ids no measured operation uses.
            for index in 0..<operations { try step(-1 - index - number * operations) }
            var recording = LatencyRecording(capacity: operations)
            for index in 0..<operations { try recording.time { try step(index + number * operations) } }
            results.append(recording.result(operation, client))
        }
        return results
    }
}

/// A statement postgres-nio prepares on a connection's first use of it (by its type), with text parameters.
protocol DriverStatement: PostgresPreparedStatement where Row == () {
    var parameters: [String] { get }
}

extension DriverStatement {
    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: parameters.count)
        for parameter in parameters { bindings.append(parameter) }
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws {}
}

struct DriverAppend: DriverStatement {
    static let sql = DriverWorkload.append
    let parameters: [String]
}

struct DriverCart: DriverStatement {
    static let sql = DriverWorkload.batch[0].sql
    let parameters: [String]
}

struct DriverLine: DriverStatement {
    static let sql = DriverWorkload.batch[1].sql
    let parameters: [String]
}

struct DriverTotals: DriverStatement {
    static let sql = DriverWorkload.batch[2].sql
    let parameters: [String]
}

struct DriverCheckpoint: DriverStatement {
    static let sql = DriverWorkload.batch[3].sql
    let parameters: [String]
}
