import Logging
import PostgresNIO

/// Wakes a runtime's runners on the log's `NOTIFY`s, sent by other processes' ``LogNotifier``s.
///
/// It listens on a pooled connection of the log's database, named so that notifiers see a listener
/// (with our own notifier's name, so that it does not notify for us: it wakes our runners in
/// memory), and reconnects with backoff when that connection drops. Anything appended while it was
/// not listening is covered by one wake-up as it starts listening again.
struct AppendListener: Sendable {
    let log: PostgresEventStore
    /// The name's id: our own notifier's, or the runtime instance's when it has none.
    let listenerID: String
    /// Our own notifier's id: its notifications woke our runners in memory already.
    let ownNotifierID: String?
    let database: RuntimeDatabase
    let initialBackoff: Duration
    let maximumBackoff: Duration
    let logger: Logger
    let isStopping: @Sendable () -> Bool
    /// Rings the runners; `notified` when another process's notification says so.
    let wake: @Sendable (_ notified: Bool) -> Void

    /// Listens until cancelled or the runtime stops.
    func run() async {
        let channel = "kappa_log_\(log.configuration.schema)"
        var backoff = Backoff(initial: initialBackoff, maximum: maximumBackoff)
        while !Task.isCancelled && !isStopping() {
            do {
                try await log.client.withConnection { connection in
                    try await listen(on: connection, channel: channel, backoff: &backoff)
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug(
                    "listening for appends failed; runners poll until it reconnects",
                    metadata: ["error": "\(String(reflecting: error))"])
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    private func listen(on connection: PostgresConnection, channel: String, backoff: inout Backoff) async throws {
        let name = LogNotifier.listenerName(channel: channel, id: listenerID)
        let logger = self.logger, wake = self.wake, own = ownNotifierID
        let listened: Result<Void, any Error>
        do {
            try await ConnectionGuard.shared.run(on: connection) {
                try await connection.run("SELECT set_config('application_name', \(name), false)", logger: logger)
            }
            try await connection.listen(on: channel) { notifications in
                backoff.reset()
                wake(false) // anything appended while we were not listening
                for try await notification in notifications where notification.payload != own {
                    wake(true)
                }
            }
            listened = .success(())
        } catch {
            listened = .failure(error)
        }
        // Unnamed again before the connection goes back to the pool (also when cancelled); a server
        // that does not answer within 2 s has the connection closed instead.
        let database = self.database
        await Task { // its own task: the listener's cancellation must not cancel it
            try? await database.withDeadline(.now + .seconds(2), abandon: { try? await connection.close() }) {
                try await ConnectionGuard.shared.run(on: connection) {
                    try await connection.run("RESET application_name", logger: logger)
                }
            }
        }.value
        try listened.get()
    }
}
