import CLibPQ
import Kappa
import NIOCore

extension ReadPageStatement {
    /// The page reads a libpq connection of the store prepares beside its appends (``HeldLibPQConnections``).
    static func libpqPrepared(_ queries: EventLogQueries) -> [ReactorConnection.Prepared] {
        [queries.readPage, queries.readPageRefined].map(ReactorConnection.Prepared.init)
    }

    /// The page through an idle held libpq connection, its cells in binary; `nil` when none is idle
    /// or the read failed there, to be read through the client instead (a read can be sent again).
    /// An error of the statement's own other than a page too large to pack (54000) — a role that may
    /// not read the log — turns these reads off for the store.
    func read(as text: StatementText, on connections: HeldLibPQConnections) async throws -> (events: [RecordedEvent], heldBack: Bool)? {
        guard connections.readsPages else { return nil }
        var parameters = LibPQParameters(capacity: 3)
        parameters.append(String(after.transactionID))
        parameters.append(Int64?.some(after.globalPosition))
        parameters.append(limit)
        let cells: Cells?
        do {
            cells = try await connections.withIdleConnection {
                try await $0.execute(prepared: text.name, parameters, binaryResults: true, decode: Cells.init(result:))
            }
        } catch let error as LibPQError {
            if !error.connectionLost && error.sqlState != "54000" { connections.stopReadingPages() }
            return nil
        }
        guard let cells else { return nil }
        connections.pageReads.add(1, ordering: .relaxed)
        guard let page = cells.page else { return ([], cells.heldBack) }
        return (try EventPage.decode(page, count: Int(cells.count)), cells.heldBack)
    }

    /// The packed page's row, in binary: the count, the page (NULL: no events), whether events are
    /// held back. Copied out of libpq's result on the reactor's thread; decoded by the reader.
    struct Cells: Sendable {
        let count: Int32
        let page: ByteBuffer?
        let heldBack: Bool

        init(result: OpaquePointer) throws {
            guard PQntuples(result) == 1, PQnfields(result) == 3, PQfformat(result, 0) == 1, PQgetisnull(result, 0, 0) == 0,
                PQgetlength(result, 0, 0) == 4, PQgetisnull(result, 0, 2) == 0, PQgetlength(result, 0, 2) == 1
            else { throw EventCells.malformed("page") }
            var count: Int32 = 0
            withUnsafeMutableBytes(of: &count) { $0.copyMemory(from: UnsafeRawBufferPointer(start: PQgetvalue(result, 0, 0), count: 4)) }
            self.count = Int32(bigEndian: count)
            self.page =
                PQgetisnull(result, 0, 1) == 0
                ? ByteBuffer(bytes: UnsafeRawBufferPointer(start: PQgetvalue(result, 0, 1), count: Int(PQgetlength(result, 0, 1)))) : nil
            self.heldBack = PQgetvalue(result, 0, 2).pointee != 0
        }
    }
}
