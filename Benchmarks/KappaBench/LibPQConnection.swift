import CLibPQ
import Foundation

/// One libpq connection, used from one thread: prepared statements, run one at a time (a round trip
/// each) or as a pipeline (PostgreSQL 14+: every statement and a sync sent at once, one round trip).
/// The driver benchmark's third client, beside postgres-nio.
final class LibPQConnection {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let connection: OpaquePointer

    /// Connects with the standard PG* variables, as libpq reads them, but over TCP to localhost when
    /// PGHOST is unset or a socket directory: the same path as the benchmark's postgres-nio client.
    init() throws {
        let host = ProcessInfo.processInfo.environment["PGHOST"].flatMap { $0.hasPrefix("/") ? nil : $0 } ?? "localhost"
        guard let connection = PQconnectdb("host='\(host)' application_name=kappa-bench-libpq") else { throw Failure(description: "libpq: out of memory") }
        self.connection = connection
        guard PQstatus(connection) == CONNECTION_OK else { throw Failure(description: "libpq: \(Self.message(connection))") }
    }

    deinit { PQfinish(connection) }

    func prepare(_ name: String, _ sql: String) throws {
        try check(PQprepare(connection, name, sql, 0, nil), "prepare \(name)")
    }

    /// A statement that needs no parameters, outside a pipeline.
    func execute(_ sql: String) throws {
        try check(PQexec(connection, sql), sql)
    }

    /// A prepared statement with text parameters: one round trip.
    func execute(prepared name: String, _ parameters: [String]) throws {
        try withParameters(parameters) { values in
            try check(PQexecPrepared(connection, name, Int32(values.count), values, nil, nil, 0), name)
        }
    }

    /// `BEGIN`, the prepared `statements` in order, `COMMIT` and a sync, sent together and read
    /// back together: one round trip for the whole transaction. Throws on the first statement that
    /// failed (the server aborts the rest of the pipeline up to the sync).
    func transaction(pipelined statements: [(name: String, parameters: [String])]) throws {
        guard PQenterPipelineMode(connection) == 1 else { throw Failure(description: "libpq: \(Self.message(connection))") }
        do {
            try sendAndRead(statements)
            guard PQexitPipelineMode(connection) == 1 else { throw Failure(description: "libpq: \(Self.message(connection))") }
        } catch {
            // Whatever was left half-done: out of pipeline mode, and out of the failed transaction.
            PQreset(connection)
            throw error
        }
    }

    private func sendAndRead(_ statements: [(name: String, parameters: [String])]) throws {
        try send(PQsendQueryParams(connection, "BEGIN", 0, nil, nil, nil, nil, 0))
        for statement in statements {
            try withParameters(statement.parameters) { values in
                try send(PQsendQueryPrepared(connection, statement.name, Int32(values.count), values, nil, nil, 0))
            }
        }
        try send(PQsendQueryParams(connection, "COMMIT", 0, nil, nil, nil, nil, 0))
        try send(PQpipelineSync(connection))
        var failure: Failure?
        // Each statement's results end with a NULL; then comes the sync's result.
        for _ in 0..<(statements.count + 2) {
            while let result = PQgetResult(connection) {
                let status = PQresultStatus(result)
                if status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && failure == nil {
                    failure = Failure(description: "libpq pipeline: \(String(cString: PQresultErrorMessage(result)))")
                }
                PQclear(result)
            }
        }
        let sync = PQgetResult(connection)
        defer { PQclear(sync) }
        guard PQresultStatus(sync) == PGRES_PIPELINE_SYNC else {
            throw failure ?? Failure(description: "libpq pipeline: no sync (\(Self.message(connection)))")
        }
        if let failure { throw failure }
    }

    private func send(_ status: Int32) throws {
        guard status == 1 else { throw Failure(description: "libpq: \(Self.message(connection))") }
    }

    private func check(_ result: OpaquePointer?, _ what: String) throws {
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            throw Failure(description: "libpq \(what): \(result.map { String(cString: PQresultErrorMessage($0)) } ?? Self.message(connection))")
        }
    }

    /// The first row of a statement without parameters, its values as text (empty: no row).
    func firstRow(_ sql: String) throws -> [String] {
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_TUPLES_OK else {
            throw Failure(description: "libpq \(sql): \(result.map { String(cString: PQresultErrorMessage($0)) } ?? Self.message(connection))")
        }
        guard PQntuples(result) > 0 else { return [] }
        return (0..<PQnfields(result)).map { String(cString: PQgetvalue(result, 0, $0)) }
    }

    private func withParameters<R>(_ parameters: [String], _ body: ([UnsafePointer<CChar>?]) throws -> R) rethrows -> R {
        let copies = parameters.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        return try body(copies.map { UnsafePointer($0) })
    }

    private static func message(_ connection: OpaquePointer) -> String {
        String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
