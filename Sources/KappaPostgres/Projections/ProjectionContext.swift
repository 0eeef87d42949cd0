import Logging
import PostgresNIO
import Synchronization

/// What a projection's ``Projection/apply(_:in:)`` writes with.
public struct ProjectionContext: Sendable {
    /// Where the handler's statements go.
    enum Target: Sendable {
        /// A connection in the batch's transaction: each statement runs as it is executed.
        case connection(PostgresConnection)
        /// A live batch sent in one round trip: statements are queued and sent with the checkpoint.
        case pipeline(QueuedStatements)
    }

    let target: Target
    /// This version's schema, quoted, ready to interpolate: `"\(unescaped: context.schema).cart_summary"`.
    public let schema: String
    /// The projection's name.
    public let projection: String
    /// The projection version being applied.
    public let version: Int
    /// `true` while a bulk rebuild applies the log in large batches (possibly in parallel partitions
    /// for a ``ProjectionOrdering/perStream`` projection); `false` when following the log.
    public let isRebuilding: Bool
    /// The runtime's logger, for the handler's own messages.
    public let logger: Logger

    init(_ target: Target, schema: String, projection: String, version: Int, isRebuilding: Bool, logger: Logger) {
        self.target = target
        self.schema = schema
        self.projection = projection
        self.version = version
        self.isRebuilding = isRebuilding
        self.logger = logger
    }

    /// The connection, inside the transaction that also moves the checkpoint: for a handler that reads
    /// as it writes. Asking for it in a batch the runtime would send in one round trip
    /// (``ProjectionRuntime/Configuration/pipelineConnectionString``) makes the runtime run this
    /// projection's batches statement by statement from then on (the batch is started again, and
    /// nothing it queued was sent). Prefer ``execute(_:)`` for writes.
    public var connection: PostgresConnection {
        get throws {
            switch target {
            case .connection(let connection): return connection
            case .pipeline(let statements):
                statements.connectionAsked()
                throw NeedsConnection()
            }
        }
    }

    /// Runs a statement in the batch's transaction. Statement by statement, it runs to completion
    /// (reading and dropping any rows), so its errors surface here. In a live batch sent in one round
    /// trip (``ProjectionRuntime/Configuration/pipelineConnectionString``), it is queued and sent with
    /// the checkpoint when the handler returns: a statement that fails then rolls the whole batch
    /// back, and the runtime applies the batch again statement by statement, where each error
    /// surfaces here as usual (so a handler that catches one behaves as it always does).
    public func execute(_ query: PostgresQuery) async throws {
        switch target {
        case .connection(let connection): try await connection.run(query, logger: logger)
        case .pipeline(let statements): statements.append(query)
        }
    }
}

/// The statements a handler queued in a pipelined batch, in order, and whether it asked for the
/// connection (whatever it then did with the error).
final class QueuedStatements: Sendable {
    private let state = Mutex<(statements: [PostgresQuery], connectionAsked: Bool)>(([], false))

    func append(_ query: PostgresQuery) { state.withLock { $0.statements.append(query) } }

    func connectionAsked() { state.withLock { $0.connectionAsked = true } }

    var all: [PostgresQuery] { state.withLock { $0.statements } }

    var wasConnectionAsked: Bool { state.withLock { $0.connectionAsked } }
}

/// Thrown by ``ProjectionContext/connection`` in a pipelined batch: the runner then applies the
/// projection statement by statement.
struct NeedsConnection: Error, CustomStringConvertible {
    var description: String { "the handler asked for the connection in a batch sent in one round trip" }
}
