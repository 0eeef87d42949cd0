import Foundation
import Kappa
import KappaTesting
import NIOCore
import PostgresNIO
import Testing

@testable import KappaPostgres

@Suite("Packed pages of the log", .serialized)
struct EventPageTests {
    /// Payloads and metadata that exercise the JSON text: escapes (a surrogate pair, `\\u0000`), non-ASCII text,
    /// numbers, nesting, empty containers, spacing, key order and a repeated key (kept as written),
    /// and metadata present and absent.
    static func variedEvents(_ n: Int) throws -> [NewEvent] {
        let payloads = [
            #"{"sku":"SKU-1","quantity":2}"#,
            #"{"note":"tab\there, quote \" and backslash \\, line\nbreak","emoji":"🛒 ünïcødé 日本"}"#,
            #"{"nested":{"a":[1,2.5,-3e10,true,false,null],"b":{}},"empty":[]}"#,
            #"{"big":12345678901234567890,"small":1e-300,"control":"\u0001\u001f"}"#,
            #"{}"#,
            #"{ "z" : 1,"a":"\\u0000 \ud83d\ude00",  "a" : [ ] }"#,
        ]
        return try (0..<n).map { i throws -> NewEvent in
            let metadata =
                i % 3 == 0
                ? EventMetadata()
                : EventMetadata(correlationID: UUID(), causationID: i % 2 == 0 ? UUID() : nil, custom: ["user": "ü-\(i)", "k\"ey": "v\\\(i)"])
            return NewEvent(
                id: UUID(), eventType: try EventTypeName("Type\(i % 4)"), schemaVersion: 1 + i % 3,
                payload: Data(payloads[i % payloads.count].utf8), metadata: metadata,
                recordedAt: Date(timeIntervalSince1970: 1_700_000_000 + Double(i) * 0.000_001))
        }
    }

    /// Prepared (followers' reads) or not (stores configured without prepared statements).
    @Test(arguments: [true, false]) func aPackedPageHoldsExactlyTheEventsReadRowByRow(prepared: Bool) async throws {
        try await withEventStore(prepared ? .prepared : .functions) { store, _ in
            let events = try Self.variedEvents(60)
            var last = LogPosition.start
            for (i, chunk) in stride(from: 0, to: events.count, by: 7).map({ Array(events[$0..<min($0 + 7, events.count)]) }).enumerated() {
                last = try await store.append(chunk, to: try StreamID("stream-\(i % 4)/x:\(i)"), expectedVersion: .any).lastPosition!
            }
            // Other suites' transactions on the server hold the horizon back for a moment.
            let appended = last
            try await eventually("the horizon passed the appends", timeout: .seconds(30)) { try await store.head() >= appended }
            // Both reads until both see every append: the log's horizon can step back for a moment
            // (a transaction of another database while it prepares counts until it shows as prepared).
            let reads = Locked<(packed: [RecordedEvent], rows: [RecordedEvent])>(([], []))
            try await eventually("both reads see the appends") {
                let packed = try await store.readLog(after: .start, limit: 1_000)
                let rows = try await store.read(store.queries.readLog(after: .start, limit: 1_000, packed: false, refined: true), stream: nil)
                reads.withLock { $0 = (packed, rows) }
                return packed.count == events.count && rows.count == events.count
            }
            let (packed, rows) = reads.withLock { $0 }
            #expect(packed.count == events.count)
            #expect(packed == rows)
            #expect(Set(packed.map(\.id)) == Set(events.map(\.id)))
            #expect(packed.map(\.payload) == events.map(\.payload), "stored byte for byte")
            #expect(zip(packed, packed.dropFirst()).allSatisfy { $0.position < $1.position })
            // Pages: the same events, page by page, to the last one (a page can come back empty
            // while the horizon steps back, as above; the next read goes on from where it stood).
            let pages = Locked<[RecordedEvent]>([])
            try await eventually("pages of 8 reach the last event") {
                let after = pages.withLock { $0.last?.position ?? .start }
                let page = try await store.readLog(after: after, limit: 8)
                return pages.withLock {
                    $0 += page
                    return $0.last?.position == rows.last?.position
                }
            }
            #expect(pages.withLock { $0 } == rows)
        }
    }

    /// postgres-nio remembers a failed preparation per connection: a follower that read before the
    /// log was migrated must not be left failing on that connection once it is.
    @Test func aReadBeforeTheLogExistsDoesNotBreakItsConnection() async throws {
        var configuration = TestDatabase.configuration()
        configuration.options.maximumConnections = 1 // every read on the same pooled connection, while it lives
        try await TestDatabase.withClient(configuration: configuration) { client in
            let schema = "kappa_test_\(UUID().uuidString.prefix(8).lowercased())"
            let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: testLogger)
            await #expect(throws: (any Error).self) { try await store.readLog(after: .start, limit: 10) }
            try await store.migrate()
            let appended = try await store.append(try deposits(1), to: "account-1", expectedVersion: .noStream)
            try await eventually("the horizon passed the append", timeout: .seconds(30)) { try await store.head() >= appended.lastPosition! }
            #expect(try await store.readLog(after: .start, limit: 10).count == 1)
            try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"), logger: testLogger)
        }
    }

    @Test func anEmptyPageIsNoEvents() async throws {
        try await withEventStore { store, _ in
            let target = LogPosition(transactionID: UInt64(Int64.max), globalPosition: Int64.max)
            let page = try await store.readLog(after: .start, limit: 100)
            let whole = try await store.readLog(after: .start, through: target, limit: 100)
            #expect(whole.isEmpty)
            #expect(page.isEmpty)
        }
    }

    // MARK: Decoding without a server

    /// A frame as the server packs it.
    static func frame(
        position: Int64, transaction: UInt64, stream: String = "s-1", type: String = "E",
        payload: String = "{}", metadata: String? = nil
    ) -> [UInt8] {
        var bytes: [UInt8] = []
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
        append(position)
        append(transaction)
        append(Int64(1))
        append(Int32(1))
        bytes += Array(repeating: 7, count: 16) // event id
        append(Int64(0)) // recorded at
        bytes += Array(stream.utf8) + [0] + Array(type.utf8) + [0] + Array(payload.utf8) + [0]
        bytes += (metadata.map { Array($0.utf8) } ?? []) + [0]
        return bytes
    }

    static func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    static func replacing(_ bytes: [UInt8], at offset: Int, with values: [UInt8]) -> [UInt8] {
        var bytes = bytes
        bytes.replaceSubrange(offset..<offset + 1, with: values)
        return bytes
    }

    @Test func framesOutOfOrderComeBackInLogOrder() throws {
        let bytes =
            Self.frame(position: 3, transaction: 10) + Self.frame(position: 1, transaction: 9)
            + Self.frame(position: 2, transaction: 10, metadata: #"{"a":"b"}"#)
        let events = try EventPage.decode(Self.buffer(bytes), count: 3)
        #expect(events.map(\.position.globalPosition) == [1, 2, 3])
        #expect(events[1].metadata.custom == ["a": "b"])
        #expect(events[0].metadata == EventMetadata())
        #expect(String(decoding: events[2].payload, as: UTF8.self) == "{}")
    }

    @Test(
        arguments: [
            ("truncated in the envelope", Array(frame(position: 1, transaction: 1).prefix(30)), 1),
            ("no end to the payload", Array(frame(position: 1, transaction: 1).dropLast(2)), 1),
            ("an empty payload", frame(position: 1, transaction: 1, payload: ""), 1),
            ("fewer events than counted", frame(position: 1, transaction: 1), 2),
            ("invalid UTF-8 in the stream id", replacing(frame(position: 1, transaction: 1, stream: "s"), at: 52, with: [0xFF]), 1),
            ("metadata that is not the log's", frame(position: 1, transaction: 1, metadata: #"{"correlationId":"not a uuid"}"#), 1),
        ] as [(String, [UInt8], Int)])
    func aMalformedPageIsATypedErrorNeverACrash(_ what: String, bytes: [UInt8], count: Int) {
        #expect(throws: EventStoreError.self, "\(what)") { try EventPage.decode(Self.buffer(bytes), count: count) }
    }
}
