import Foundation
import NIOCore
import PostgresNIO
import Testing

@testable import KappaPostgres

/// A pipelined statement's parameters are read from postgres-nio's bindings through their memory
/// layout, not by reflection (about 40 µs a statement): the two must agree on every kind of value.
@Suite struct BoundParametersTests {
    @Test func theLayoutOfThisPostgresNIOIsRecognised() {
        // Otherwise every pipelined statement silently takes the reflecting path.
        #expect(BindingsLayout.matches)
    }

    @Test func theLayoutReadsWhatReflectionReads() throws {
        let date = Date(timeIntervalSince1970: 1_765_000_000.123456)
        let query: PostgresQuery = """
            SELECT \(Int.min + 1), \(Int32(-7)), \("é ' \\ \" ✓"), \(UUID(uuidString: "6F9619FF-8B86-D011-B42D-00C04FC964FF")!),
                \(date), \(true), \(0.1), \(["a", "", "c,d"]), \([Int64.max, 0]), \(String?.none), \(ByteBuffer(bytes: [0, 1, 255])), \("")
            """
        let read = try BoundParameters(query.binds), reflected = try BoundParameters(reflecting: query.binds)
        #expect(read == reflected)
        #expect(read.values.count == 12)
        #expect(read.values[9] == nil) // the NULL
        #expect(read.values[11]?.readableBytes == 0) // the empty string is not NULL
    }

    @Test func noBindingsReadAsNoParameters() throws {
        let read = try BoundParameters(PostgresBindings())
        #expect(read.values.isEmpty && read.types.isEmpty && read.formats.isEmpty)
    }
}
