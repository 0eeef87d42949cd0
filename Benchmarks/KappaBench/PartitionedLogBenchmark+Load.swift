import PostgresNIO

extension PartitionedLogBenchmark {
    /// The events table's columns (without its triggers: the hash chain is the same work in both).
    static let columns = """
        position        bigint GENERATED ALWAYS AS IDENTITY,
        transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
        event_id        uuid        NOT NULL,
        stream_id       text        NOT NULL,
        stream_version  bigint      NOT NULL,
        event_type      text        NOT NULL,
        schema_version  integer     NOT NULL,
        payload         jsonb       NOT NULL,
        metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
        recorded_at     timestamptz NOT NULL,
        event_hash      bytea       NOT NULL
        """

    /// Writes both tables (indexes built after the rows, as a restore does); the time each took.
    func load(_ client: PostgresClient) async throws -> (Duration, Duration) {
        let schema = Self.schema
        try await run(
            client,
            [
                // pg_partman keeps its configuration of a table in its own schema: a fresh one each run.
                "DROP SCHEMA IF EXISTS \(schema) CASCADE",
                "DROP EXTENSION IF EXISTS pg_partman CASCADE",
                "DROP SCHEMA IF EXISTS partman CASCADE",
                "CREATE SCHEMA \(schema)",
                "CREATE SCHEMA partman",
                "CREATE EXTENSION pg_partman SCHEMA partman",
                "CREATE TABLE \(schema).plain (\(Self.columns))",
                "CREATE TABLE \(schema).parted (\(Self.columns)) PARTITION BY RANGE (recorded_at)",
                """
                SELECT partman.create_parent(p_parent_table => '\(schema).parted', p_control => 'recorded_at', p_type => 'native',
                    p_interval => '1 month', p_premake => 2,
                    p_start_partition => to_char(date_trunc('month', now() - interval '\(months) months'), 'YYYY-MM-DD'))
                """,
            ])
        // Event i: stream cart-k (blocks of 200 events hold ten streams of 20 events, interleaved),
        // ten events a transaction, recorded at evenly spaced times over the months up to now.
        let rows = """
            SELECT (1000 + i / 10)::text::xid8, gen_random_uuid(), 'cart-' || ((i / 200) * 10 + i % 10), (i % 200) / 10 + 1,
                   CASE WHEN i % 200 >= 190 THEN 'CartCheckedOut' ELSE 'ItemAddedToCart' END, 1,
                   jsonb_build_object('cartId', 'c' || ((i / 200) * 10 + i % 10), 'sku', 'SKU-' || (i % 97), 'quantity', 1 + i % 3, 'unitPrice', 100 + i % 50),
                   '{}'::jsonb,
                   now() - interval '\(months) months' + (interval '\(months) months' - interval '1 hour') * (i::float8 / \(events)),
                   sha256(int8send(i))
            FROM generate_series(0, \(events - 1)) AS i
            """
        let names = "transaction_id, event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at, event_hash"
        let indexes = { (table: String, partitioned: Bool) -> [String] in
            // A partitioned table's unique indexes must include the partition key.
            let key = partitioned ? ", recorded_at" : ""
            return [
                "ALTER TABLE \(table) ADD PRIMARY KEY (position\(key))",
                "ALTER TABLE \(table) ADD UNIQUE (event_id\(key))",
                partitioned
                    ? "CREATE INDEX ON \(table) (stream_id, stream_version)" : "ALTER TABLE \(table) ADD UNIQUE (stream_id, stream_version)",
                "CREATE INDEX ON \(table) (transaction_id, position)",
                "VACUUM (ANALYZE) \(table)",
                "CHECKPOINT",
            ]
        }
        let clock = ContinuousClock()
        let plain = try await clock.measure {
            try await run(client, ["INSERT INTO \(schema).plain (\(names)) \(rows)"] + indexes("\(schema).plain", false))
        }
        let parted = try await clock.measure {
            try await run(
                client,
                ["INSERT INTO \(schema).parted (position, \(names)) OVERRIDING SYSTEM VALUE SELECT position, \(names) FROM \(schema).plain"]
                    + indexes("\(schema).parted", true))
        }
        // The parted table's identity goes on from the plain one's.
        try await run(client, ["SELECT setval(pg_get_serial_sequence('\(schema).parted', 'position'), \(events))"])
        return (plain, parted)
    }

    /// Runs each statement on one connection, with memory enough for the index builds.
    func run(_ client: PostgresClient, _ statements: [String]) async throws {
        try await client.withConnection { connection in
            try await connection.query("SET maintenance_work_mem = '1GB'", logger: quietLogger)
            for statement in statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: quietLogger) }
        }
    }
}
