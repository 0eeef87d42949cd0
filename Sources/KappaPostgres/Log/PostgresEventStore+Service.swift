import ServiceLifecycle

extension PostgresEventStore: Service {
    /// Holds ``Configuration/heldAppendConnections`` connections of the client's pool for appends
    /// until cancelled or shut down gracefully (then gives each back once its append is done). Run
    /// it beside the client, in the same service group or task group. Optional: a store that is not
    /// running leases a connection from the pool for each append. With
    /// ``Configuration/appendConnectionString``, it holds as many libpq connections too.
    public func run() async throws {
        let held = heldConnections, count = configuration.heldAppendConnections, client = self.client, logger = self.logger
        // A service that returns early would end its service group: with nothing to hold, it waits.
        guard count > 0 else { return (try? await gracefulShutdown()) ?? () }
        let libpq = libpqConnections
        let prepared = AppendStatement.libpqPrepared(queries.appends, group: queries.groupAppend) + ReadPageStatement.libpqPrepared(queries)
        // Without prepared statements (a pooler that cannot keep them) appends never use them.
        let connectionString = configuration.preparedStatements ? configuration.appendConnectionString : nil
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await held.hold(count, from: client, logger: logger) }
                guard let connectionString else { return }
                group.addTask {
                    await libpq.hold(count, logger: logger) {
                        try await ReactorConnection.connect(connectionString, applicationName: "kappa-append", preparing: prepared)
                    }
                }
            }
        }
    }
}
