import Kappa
import Logging
import PostgresNIO

/// A held lease on a projection version or reactor: who holds it, its fencing token, and the
/// checkpoint it was taken at (then moved by the holder).
struct Lease: Sendable {
    let table: LeaseTable
    let key: LeaseKey
    let owner: String
    let token: Int64
    var checkpoint: LogPosition

    /// Takes the lease if it is free, expired or this runtime's, with a new token; `nil` while another runner holds it.
    /// `allowDropped`: a rebuild from scratch may take a dropped version (its reset brings it back).
    static func acquire(_ table: LeaseTable, _ key: LeaseKey, core: RuntimeCore, allowDropped: Bool = false) async throws -> Lease? {
        let owner = core.configuration.owner
        let query = core.queries.acquireLease(
            table, key, owner: owner, holder: core.instanceID,
            milliseconds: core.configuration.leaseMilliseconds, allowDropped: allowDropped)
        let rows = try await core.database.readModelRows(query) { try $0.decode((Int64, Int64, Int64).self) }
        return rows.last.map { token, transaction, position in
            Lease(
                table: table, key: key, owner: owner, token: token,
                checkpoint: LogPosition(transactionID: UInt64(transaction), globalPosition: position))
        }
    }

    /// Moves the checkpoint from ``checkpoint`` inside the caller's transaction; throws ``LeaseLost``
    /// (so the transaction rolls back) when the token is no longer current or the checkpoint moved.
    func advance(to position: LogPosition, applied: Int, state: ProjectionStatus.State, on connection: PostgresConnection, core: RuntimeCore) async throws {
        let configuration = core.configuration, asynchronous = !configuration.synchronousReadModelCommits
        let statement = move(to: position, applied: applied, state: state, core: core)
        var moved = false
        if configuration.preparedStatements {
            let text = core.queries.advanceStatement(table, asynchronousCommit: asynchronous)
            moved = try await !connection.executeAll(statement, as: text, logger: core.logger).isEmpty
        } else {
            let query = core.queries.advanceCheckpoint(table, statement, asynchronousCommit: asynchronous)
            for try await _ in try await connection.query(query, logger: core.logger) { moved = true }
        }
        if !moved { throw LeaseLost() }
    }

    /// The fenced move of the checkpoint from ``checkpoint`` to `position`.
    func move(to position: LogPosition, applied: Int, state: ProjectionStatus.State, core: RuntimeCore) -> AdvanceStatement {
        AdvanceStatement(
            key: key, owner: owner, token: token, start: checkpoint, position: position, applied: applied,
            state: state, milliseconds: core.configuration.leaseMilliseconds)
    }

    /// Extends the lease while idle; throws ``LeaseLost`` when it is gone.
    func renew(state: ProjectionStatus.State, core: RuntimeCore) async throws {
        let query = core.queries.renewLease(table, key, owner: owner, token: token, milliseconds: core.configuration.leaseMilliseconds, state: state)
        if try await core.database.readModelRows(query, resending: true, { _ in () }).isEmpty { throw LeaseLost() }
    }

    /// Runs `work` (a batch) while renewing the lease every third of its duration, so that a batch
    /// longer than the lease keeps it instead of letting another runner take it midway. A renewal that
    /// finds the lease gone stops renewing; the batch's fenced checkpoint move then fails it.
    func whileRenewing<R: Sendable>(state: ProjectionStatus.State, core: RuntimeCore, _ work: @escaping @Sendable () async throws -> R) async throws -> R {
        let interval = core.configuration.leaseDuration / 3
        return try await withThrowingTaskGroup(of: R?.self) { group in
            group.addTask { try await work() }
            group.addTask {
                while true {
                    try await Task.sleep(for: interval)
                    do {
                        try await renew(state: state, core: core)
                    } catch is LeaseLost {
                        return nil
                    } catch  where !(error is CancellationError) {
                        core.logger.debug("renewing a lease during a batch failed", metadata: ["error": "\(String(reflecting: error))"])
                    }
                }
            }
            defer { group.cancelAll() }
            while let finished = try await group.next() {
                if let result = finished { return result }
            }
            throw CancellationError()
        }
    }

    /// Gives the lease up so another runner can take over at once. Best effort.
    func release(core: RuntimeCore) async {
        do {
            _ = try await core.database.readModelRows(core.queries.releaseLease(table, key, owner: owner, token: token), resending: true) { _ in () }
        } catch {
            core.logger.debug("could not release a lease; it expires by itself", metadata: ["error": "\(String(reflecting: error))"])
        }
    }
}
