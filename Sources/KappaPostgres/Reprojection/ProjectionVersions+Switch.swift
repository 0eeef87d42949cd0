import Logging
import PostgresNIO

extension ProjectionVersions {
    /// One switch of the stable names, in one durable transaction: the versions are locked, `choose`
    /// checks them and names the target (and the active version it replaces), lifecycles change, the
    /// views are replaced and the switch is recorded. A switch that meets a reader's lock gives way
    /// (short lock timeout) and tries again, so readers are never the ones to fail.
    ///
    /// `choose` runs first on the versions as they are, `measuringLag` true, before the transaction:
    /// counting the log takes a connection of its own, which a transaction holding one must not wait
    /// for (a pool of one connection, or switches of as many projections as the pool has connections,
    /// would never give it). It runs again under the lock with `measuringLag` false: a version keeps
    /// its lifecycle only while its checkpoint moves forward, so its lag can only have shrunk. Should
    /// it name another target then (a switch came between), the switch starts again.
    /// - Returns: the version made active.
    @discardableResult
    func switchStableNames(
        _ name: String, kind: String, patience: Duration = catchUpPatience,
        choose: @escaping @Sendable (_ rows: [ProjectionVersion], _ measuringLag: Bool) async throws -> (target: Int, previous: Int?)
    ) async throws -> Int {
        let queries = core.queries, logger = core.logger
        var backoff = Backoff(initial: .milliseconds(20), maximum: .seconds(1))
        let waitUntil = ContinuousClock.now + patience
        var lockAttempts = 0
        while true {
            do {
                let measured = try await choose(try await versions(of: name), true).target
                let (target, previous) = try await durableTransaction { connection in
                    try await connection.run("SET LOCAL lock_timeout TO '500ms'", logger: logger)
                    try await connection.run(queries.lockVersions(name), logger: logger)
                    let rows = try await Self.rows(name, on: connection, queries: queries, logger: logger)
                    let (target, previous) = try await choose(rows, false)
                    // Another switch came between: the lag measured was another version's.
                    if target != measured { throw TargetChanged() }
                    if let previous { try await connection.run(queries.setLifecycle(name, version: previous, to: "retired"), logger: logger) }
                    try await connection.run(queries.setLifecycle(name, version: target, to: "active"), logger: logger)
                    try await StableNames.point(at: ProjectionID(name: name, version: target), on: connection, queries: queries, logger: logger)
                    try await connection.run(queries.recordSwitch(name, from: previous, to: target, kind: kind), logger: logger)
                    return (target, previous)
                }
                logger.notice(
                    "switched the stable names",
                    metadata: [
                        "kappa.projection": "\(name)", "kappa.version": "\(target)", "kappa.previous_version": "\(previous.map(String.init) ?? "none")",
                        "kappa.switch": "\(kind)",
                    ])
                return target
            } catch let error as PSQLError where [.lockNotAvailable, .deadlockDetected].contains(error.sqlState) && lockAttempts < 49 {
                lockAttempts += 1
                logger.notice(
                    "a switch met a lock held by a reader; trying again",
                    metadata: [
                        "kappa.projection": "\(name)", "kappa.attempt": "\(lockAttempts)", "error": "\(error.serverInfo?[.message] ?? "")",
                    ])
                try await Task.sleep(for: backoff.next())
            } catch let behind as BehindActive {
                // Its runner is a batch behind the active version's: wait for it, a little.
                guard ContinuousClock.now < waitUntil else {
                    throw ProjectionError(
                        .notCaughtUp, projection: name, version: behind.target.version,
                        message: """
                            is behind the active version \(behind.active.version) (at \(behind.target.checkpoint), the active one at \
                            \(behind.active.checkpoint)) after \(patience); is a runtime following it?
                            """)
                }
                try await Task.sleep(for: .milliseconds(20))
            } catch is TargetChanged {
                continue
            }
        }
    }

    private struct TargetChanged: Error {}

    /// How long a switch waits for its target to reach the active version's checkpoint.
    static var catchUpPatience: Duration { .seconds(10) }

    /// A read-model transaction whose commit waits for the disk: switches and drops must not be undone.
    /// (The runtime's transaction, guarded against a connection that closes under it; no statement
    /// in it turns synchronous commit off; no watchdog, as before.)
    /// Not bounded by the runners' idle limit (``SessionIdleLimit``): a switch holds no lease, and
    /// ending it halfway would only make the caller try again.
    func durableTransaction<R: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> R) async throws -> R {
        let logger = core.logger
        return try await core.database.withReadModelTransaction(watchdog: false) { connection in
            try await connection.run("SET LOCAL idle_in_transaction_session_timeout TO 0", logger: logger)
            return try await body(connection)
        }
    }
}

/// A switch's target has applied less of the log than the active version: switching now would show
/// readers an older state than they have seen.
struct BehindActive: Error {
    let target: ProjectionVersion
    let active: ProjectionVersion
}
