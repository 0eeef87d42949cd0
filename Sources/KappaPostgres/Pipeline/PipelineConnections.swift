import Synchronization

/// The runtime's libpq connections for pipelined batches: one per runner in a batch at a time, kept
/// between batches (a live batch never waits for a connection to open), and closed when the runtime
/// stops. A connection that failed, or that the watchdog aborted, is dropped instead of kept.
final class PipelineConnections: Sendable {
    private let connectionString: String
    private let applicationName: String
    /// Checks each new connection before its first use; a connection that fails it is closed.
    private let check: @Sendable (LibPQConnection) async throws -> Void
    private let idle = Mutex<(connections: [LibPQConnection], closed: Bool)>(([], false))

    init(connectionString: String, applicationName: String, check: @escaping @Sendable (LibPQConnection) async throws -> Void = { _ in }) {
        self.connectionString = connectionString
        self.applicationName = applicationName
        self.check = check
    }

    /// Runs `body` on an idle connection, or a new one.
    func withConnection<R: Sendable>(_ body: (LibPQConnection) async throws -> R) async throws -> R {
        let connection: LibPQConnection
        if let kept = idle.withLock({ $0.connections.popLast() }) {
            connection = kept
        } else {
            connection = try await LibPQConnection.connect(connectionString, applicationName: applicationName)
            try await check(connection)
        }
        let result: Result<R, any Error>
        do { result = .success(try await body(connection)) } catch { result = .failure(error) }
        if connection.isReusable {
            // After the runtime stopped, it is closed (released) here instead.
            idle.withLock { if !$0.closed { $0.connections.append(connection) } }
        }
        return try result.get()
    }

    /// Closes the idle connections, and those in use as they come back.
    func close() {
        var closing: [LibPQConnection] = []
        idle.withLock { state in
            state.closed = true
            swap(&closing, &state.connections)
        }
        closing.removeAll() // each closes its connection as it is released
    }
}
