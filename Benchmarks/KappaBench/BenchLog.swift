import Foundation
import Kappa
import KappaPostgres
import Logging
import PostgresNIO
import ServiceLifecycle

/// A fresh log for a benchmark, and a fast way to fill it.
enum BenchLog {
    /// `libpqAppends`: the store's `appendConnectionString` set (its appends through libpq while it runs).
    static func fresh(_ client: PostgresClient, schema: String, notifier: LogNotifier? = nil, libpqAppends: Bool = false) async throws -> PostgresEventStore {
        try await client.query("DROP SCHEMA IF EXISTS \(unescaped: schema) CASCADE")
        var configuration = PostgresEventStore.Configuration(schema: schema)
        if libpqAppends { configuration.appendConnectionString = BenchDatabase.connectionString }
        let store = try PostgresEventStore(client: client, configuration: configuration, notifier: notifier, logger: quietLogger)
        try await store.migrate()
        return store
    }

    /// Writes `events` cart events with COPY (the sample's shape: adds, every fifth a removal, a
    /// checkout last), streams `cart-<n>`. Returns how many were written.
    static func seedCarts(_ client: PostgresClient, store: PostgresEventStore, events: Int, carts: Int) async throws -> Int {
        let perCart = max(2, events / carts)
        let stamp = ISO8601DateFormatter().string(from: Date())
        let schema = store.configuration.schema
        var written = 0
        try await client.withConnection { connection in
            // COPY quotes the table name as one identifier; reach the schema through search_path.
            try await connection.query("SET search_path TO \(unescaped: schema)", logger: quietLogger)
            try await connection.copyFrom(
                table: "events",
                columns: ["event_id", "stream_id", "stream_version", "event_type", "schema_version", "payload", "metadata", "recorded_at"],
                logger: quietLogger
            ) { writer in
                var chunk = ""
                for cart in 0..<carts {
                    for n in 0..<perCart {
                        let (type, json): (String, String)
                        if n == perCart - 1 {
                            (type, json) = ("CartCheckedOut", #"{"cartId":"c\#(cart)"}"#)
                        } else if n % 5 == 4 {
                            (type, json) = ("ItemRemovedFromCart", #"{"cartId":"c\#(cart)","sku":"SKU-\#(n - 1)","quantity":1,"unitPrice":\#(100 + n - 1)}"#)
                        } else {
                            (type, json) = ("ItemAddedToCart", #"{"cartId":"c\#(cart)","sku":"SKU-\#(n)","quantity":\#(1 + n % 3),"unitPrice":\#(100 + n)}"#)
                        }
                        chunk += "\(UUID())\tcart-\(cart)\t\(n + 1)\t\(type)\t1\t\(json)\t{}\t\(stamp)\n"
                        written += 1
                    }
                    if chunk.utf8.count > 1 << 20 {
                        try await writer.write(ByteBuffer(string: chunk))
                        chunk = ""
                    }
                }
                if !chunk.isEmpty { try await writer.write(ByteBuffer(string: chunk)) }
            }
            try await connection.query("RESET search_path", logger: quietLogger)
            // As an older log would be: hint bits set, pages all-visible, statistics fresh — so the first
            // reader (the SQL baseline, usually) does not pay for writing them.
            try await connection.query("VACUUM (ANALYZE) \(unescaped: schema).events", logger: quietLogger)
            // And written out: else the checkpoint that the seed's WAL sets off runs during the measurements.
            try await connection.query("CHECKPOINT", logger: quietLogger)
        }
        return written
    }
}

/// Runs a projection runtime (and other services) while `body` runs, then stops them gracefully.
enum BenchRuntime {
    static func run<R: Sendable>(_ services: any Service..., body: @Sendable () async throws -> R) async throws -> R {
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: quietLogger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            defer { tasks.cancelAll() }
            let result = try await body()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        }
    }
}

extension BenchLog {
    /// The cart read model computed by one SQL statement from the events table: the benchmarks' baseline.
    /// Over the log as stored (`json`), each payload is parsed once (`json_to_record`; four `->>` parse
    /// it four times). `jsonb: true` is for a copy of the log with `jsonb` payloads, which `->>` reads
    /// without parsing (the fastest form there; `jsonb_to_record` was slower).
    static func cartSummaryBaseline(into table: String, events: String, jsonb: Bool = false) -> String {
        let (source, cart, quantity, price) =
            jsonb
            ? (events, "payload->>'cartId'", "(payload->>'quantity')", "(payload->>'unitPrice')")
            : (#"\#(events), json_to_record(payload) AS p("cartId" text, quantity int, "unitPrice" int8)"#, #"p."cartId""#, "p.quantity", #"p."unitPrice""#)
        return """
            INSERT INTO \(table) (cart_id, items, total_cents, checked_out, events, written_by)
            SELECT \(cart),
                   sum(CASE event_type WHEN 'ItemAddedToCart' THEN \(quantity)::int
                                       WHEN 'ItemRemovedFromCart' THEN -\(quantity)::int ELSE 0 END),
                   sum(CASE event_type WHEN 'ItemAddedToCart' THEN \(quantity)::int8 * \(price)::int8
                                       WHEN 'ItemRemovedFromCart' THEN -\(quantity)::int8 * \(price)::int8 ELSE 0 END),
                   bool_or(event_type = 'CartCheckedOut'), count(*), ''
            FROM \(source)
            WHERE event_type IN ('ItemAddedToCart', 'ItemRemovedFromCart', 'CartCheckedOut')
            GROUP BY 1
            """
    }

    /// ``CartLinesProjection``'s read model computed by SQL from `events`, into `carts` and `lines`
    /// (tables shaped as the projection's): a line is what was added to a cart under a SKU since its
    /// last removal, priced as its first add since then; a cart's totals are its lines'.
    static func cartLinesBaseline(carts: String, lines: String, events: String) -> [String] {
        let source = """
            SELECT position, event_type, p."cartId" AS cart, p.sku, p.quantity, p."unitPrice" AS price
            FROM \(events), json_to_record(payload) AS p("cartId" text, sku text, quantity int8, "unitPrice" int8)
            WHERE event_type IN ('ItemAddedToCart', 'ItemRemovedFromCart', 'CartCheckedOut')
            """
        return [
            "CREATE TEMP TABLE baseline_events ON COMMIT DROP AS \(source)",
            """
            INSERT INTO \(lines) (cart_id, sku, quantity, unit_price)
            SELECT a.cart, a.sku, sum(a.quantity), (array_agg(a.price ORDER BY a.position))[1]
            FROM baseline_events a
            LEFT JOIN (SELECT cart, sku, max(position) AS position FROM baseline_events WHERE event_type = 'ItemRemovedFromCart' GROUP BY 1, 2) r
              USING (cart, sku)
            WHERE a.event_type = 'ItemAddedToCart' AND a.position > coalesce(r.position, 0)
            GROUP BY 1, 2
            """,
            """
            INSERT INTO \(carts) (cart_id, items, total_cents, checked_out, events)
            SELECT e.cart, coalesce(l.items, 0), coalesce(l.total, 0), e.checked_out, e.events
            FROM (SELECT cart, bool_or(event_type = 'CartCheckedOut') AS checked_out, count(*) AS events
                  FROM baseline_events GROUP BY 1 HAVING bool_or(event_type = 'ItemAddedToCart')) e
            LEFT JOIN (SELECT cart_id, sum(quantity) AS items, sum(quantity * unit_price) AS total FROM \(lines) GROUP BY 1) l
              ON l.cart_id = e.cart
            """,
        ]
    }
}
