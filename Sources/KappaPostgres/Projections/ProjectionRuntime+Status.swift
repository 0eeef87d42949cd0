import Foundation
import Kappa
import PostgresNIO

/// Where a projection version stands. Also readable from SQL: `SELECT * FROM kappa_projections.projection_status`.
public struct ProjectionStatus: Sendable, Hashable {
    /// What a version's runner is doing, as stored in the `state` column.
    public enum State: String, Sendable, Hashable {
        /// `rebuilding`: a bulk rebuild is applying the log. `catchingUp` (`catching_up`): reading the
        /// log towards its head (the state every version starts in). `live`: at the head, applying events
        /// as they arrive. `stopped`: no runner holds the version's lease — the runtime that ran it shut
        /// down (released it) or died (it expired), or none runs it; a stored state this library does
        /// not know also reads as this. `failed`: stopped at a poison event under
        /// ``PoisonEventPolicy/stop``; see ``ProjectionStatus/failedPosition``.
        case rebuilding
        case catchingUp = "catching_up"
        case live, stopped, failed
    }

    /// The projection's name.
    public var name: String
    /// The projection version.
    public var version: Int
    /// What the version's runner is doing.
    public var state: State
    /// The last event applied.
    public var checkpoint: LogPosition
    /// Events this version has applied so far.
    public var eventsApplied: Int64
    /// The runtime holding the lease, if any.
    public var leaseOwner: String?
    /// Unresolved dead letters.
    public var deadLetters: Int64
    /// For a failed projection: the position, type and error of the event it stopped at.
    public var failedPosition: Int64?
    /// The type of the event it stopped at.
    public var failedEventType: String?
    /// The error the handler threw for that event, as text.
    public var failedError: String?
    /// Events in the log after the checkpoint.
    public var lagEvents: Int64
    /// Age of the oldest of those events, in seconds (0 when none).
    public var lagSeconds: Double
    /// How long the oldest open transaction that may append to the log has held its horizon back, in
    /// seconds: followers cannot pass its events until it ends. Which one:
    /// ``PostgresEventStore/horizonHolders()``.
    public var horizonHeldBackSeconds: Double
}

extension ProjectionRuntime {
    /// The status of every projection version registered in the read-model database.
    /// Empty until the runtime's tables exist.
    public func status() async throws -> [ProjectionStatus] {
        let rows: [ProjectionQueries.StatusRow]
        do {
            rows = try await core.database.readModelRows(core.queries.statusRows(), resending: true) { try ProjectionQueries.StatusRow($0) }
        } catch let error as PSQLError where error.sqlState == .undefinedTable {
            return []
        }
        let held = try await core.log.horizonHolders().compactMap(\.ageSeconds).max() ?? 0
        var result: [ProjectionStatus] = []
        for row in rows {
            let lag =
                try await core.database.logRows(core.log.queries.lag(after: row.checkpoint)) { try $0.decode((Int64, Double).self) }.last
                ?? (Int64(0), Double(0))
            result.append(
                ProjectionStatus(
                    name: row.name, version: row.version, state: row.state, checkpoint: row.checkpoint, eventsApplied: row.eventsApplied,
                    leaseOwner: row.leaseOwner, deadLetters: row.deadLetters, failedPosition: row.failedPosition,
                    failedEventType: row.failedEventType, failedError: row.failedError, lagEvents: lag.0, lagSeconds: lag.1,
                    horizonHeldBackSeconds: held))
        }
        return result
    }

    /// Read your own writes: returns once projection `name` has applied everything up to `position` —
    /// usually the last position an append returned. Without `version`: the version readers see
    /// through the stable names (the active one, read at most every 250 ms), else — none active yet —
    /// the highest version registered here. The active version is waited for even when this runtime
    /// does not run it: through its checkpoint, which another process's runner moves; with none
    /// running it, the wait times out rather than return while readers see a version left behind.
    /// - Throws: ``ProjectionError/Code/timedOut`` after `timeout`; ``ProjectionError/Code/unknownProjection``.
    ///
    /// Across a switch of the stable names: once the version waited for has passed `position`, the
    /// active version is read again, and if another one now serves, it is waited for too. A switch
    /// only ever moves readers to a version at least as far along the log as the one they leave
    /// (``ProjectionVersions/promote(_:version:)``), so what this returned for stays visible.
    public func waitUntil(_ name: String, version: Int? = nil, hasPassed position: LogPosition, timeout: Duration = .seconds(5)) async throws {
        let registered = projections.filter { $0.name == name }.map(\.version)
        guard let highest = registered.max() else {
            throw ProjectionError(.unknownProjection, projection: name, message: "not registered in this runtime")
        }
        let deadline = ContinuousClock.now + timeout
        if let version {
            return try await waitUntil(try ProjectionID(name: name, version: version), hasPassed: position, deadline: deadline, timeout: timeout)
        }
        var chosen = try await core.activeVersion(of: name) ?? highest
        guard registered.count > 1 || chosen != highest else {
            return try await waitUntil(try ProjectionID(name: name, version: chosen), hasPassed: position, deadline: deadline, timeout: timeout)
        }
        while true {
            try await waitUntil(try ProjectionID(name: name, version: chosen), hasPassed: position, deadline: deadline, timeout: timeout)
            // Read afresh: a switch since the cached read moves readers to another version.
            guard let active = try await core.activeVersion(of: name, maximumAge: .zero), active != chosen else { return }
            chosen = active
        }
    }

    private func waitUntil(_ id: ProjectionID, hasPassed position: LogPosition, deadline: ContinuousClock.Instant, timeout: Duration) async throws {
        let key = LeaseKey(name: id.name, version: id.version)
        var nextRead = ContinuousClock.now
        var checkpoint: LogPosition?
        while true {
            if let committed = core.committedCheckpoint(key), committed >= position { return }
            try Task.checkCancellation()
            let now = ContinuousClock.now
            guard now < deadline else {
                throw ProjectionError(
                    .timedOut, projection: id.name, version: id.version, position: position,
                    message: "still at \((core.committedCheckpoint(key) ?? checkpoint).map { "\($0)" } ?? "no checkpoint (not set up yet)") after \(timeout)")
            }
            if core.holdsLease(key) {
                // This runtime's runner holds the lease: its commits, reported in memory, are the whole
                // truth, and the one that passes the position resumes this wait. No waiter reads the table.
                await core.waiters.wait(for: key, toPass: position, until: deadline) {
                    (core.committedCheckpoint(key) ?? .start) >= position || !core.holdsLease(key)
                }
                continue
            }
            // Another process holds the lease, or the runtime is starting: read the table, at most
            // every 25 ms. (Missing while the runtime is still starting: its tables or this version not set up yet.)
            if now >= nextRead {
                nextRead = now + .milliseconds(25)
                // A read that fails for a transient reason (its connection killed, or closed under it:
                // see ConnectionGuard) is read again; one the server does not answer is abandoned after 2 s.
                do {
                    checkpoint = try await core.database.withDeadline(min(deadline, now + .seconds(2))) { try await self.checkpoint(of: id) }
                } catch  where isTransient(error) && !(error is CancellationError) {
                    core.logger.debug(
                        "a read-your-writes wait's checkpoint read failed; reading again",
                        metadata: ["kappa.projection": "\(id.name)", "error": "\(String(reflecting: error))"])
                    continue
                }
                if let checkpoint, checkpoint >= position { return }
            }
            try await Task.sleep(until: min(deadline, nextRead))
        }
    }

    /// The checkpoint of a projection version; `nil` when it is not set up (yet).
    func checkpoint(of id: ProjectionID) async throws -> LogPosition? {
        do {
            let rows = try await core.database.readModelRows(core.queries.checkpoint(id), resending: true) { try $0.decode((Int64, Int64, String).self) }
            return rows.last.map { transaction, globalPosition, _ in
                LogPosition(transactionID: UInt64(transaction), globalPosition: globalPosition)
            }
        } catch let error as PSQLError where error.sqlState == .undefinedTable {
            return nil
        }
    }

    /// Applies the unresolved dead letters of a projection version again, oldest first, each in its
    /// own transaction; those that now succeed are marked resolved, the others keep their place with
    /// the new error and one more attempt counted. Fenced like a batch: it runs only while no other
    /// process holds the version's lease (this runtime's own runner waits for each retry's commit).
    /// - Throws: ``ProjectionError/Code/rebuildInProgress`` while another process holds the lease.
    /// - Returns: How many were resolved.
    @discardableResult
    public func retryDeadLetters(projection name: String, version: Int) async throws -> Int {
        guard let projection = projections.first(where: { $0.name == name && $0.version == version }) else {
            throw ProjectionError(.unknownProjection, projection: name, version: version, message: "not registered in this runtime")
        }
        let id = try ProjectionID(name: name, version: version)
        let ids = try await core.database.readModelRows(core.queries.unresolvedDeadLetters(id), resending: true) { try $0.decode(UUID.self) }
        var resolved = 0
        for eventID in ids {
            guard let event = try await core.log.event(id: eventID) else { continue }
            let queries = core.queries, logger = core.logger, holder = core.instanceID
            do {
                let applied = try await core.database.withReadModelTransaction { connection in
                    guard try await !connection.allRows(queries.fenceDeadLetterRetry(id, holder: holder), logger: logger, { _ in () }).isEmpty else {
                        throw ProjectionError(
                            .rebuildInProgress, projection: id.name, version: id.version,
                            message: "another process holds this version's lease; retry its dead letters there, or once it has stopped")
                    }
                    // The letter is claimed first, in the transaction that applies its event: a retry of
                    // the same letter beside this one (another process, or a second call) waits on the
                    // row, then finds it resolved and applies nothing — the event is applied once.
                    guard try await !connection.allRows(queries.resolveDeadLetter(id, eventID: eventID), logger: logger, { _ in () }).isEmpty else {
                        return false
                    }
                    try await projection.apply(
                        [event],
                        in: ProjectionContext(
                            .connection(connection), schema: id.schema.quoted, projection: id.name, version: id.version, isRebuilding: false, logger: logger))
                    return true
                }
                if applied { resolved += 1 }
            } catch let error as ProjectionError where error.code == .rebuildInProgress {
                throw error
            } catch {
                if isTransient(error) { throw error }
                _ = try await core.database.readModelRows(queries.recordDeadLetter(id, event: event, error: String(reflecting: error))) { _ in () }
            }
        }
        return resolved
    }
}
