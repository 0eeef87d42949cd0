import Foundation
import Kappa
import Logging
import Metrics
import PostgresNIO

/// Runs one projection version: takes its lease, then applies the log batch by batch, each batch in
/// one read-model transaction with the checkpoint, until the runtime stops.
struct ProjectionRunner: Sendable {
    let projection: any Projection
    let id: ProjectionID
    let core: RuntimeCore
    let policy: PoisonEventPolicy
    let logger: Logger
    let eventsCounter: Counter
    let batchTimer: Metrics.Timer
    /// Seconds between the last applied event's `recordedAt` and its batch's commit; 0 once a read
    /// of the log comes back empty (caught up).
    let lagGauge: Gauge
    /// Building, finishing the build and promotion: what the runner does at the log's horizon.
    let lifecycle: VersionLifecycle

    init(projection: any Projection, core: RuntimeCore) throws {
        self.projection = projection
        self.id = try ProjectionID(name: projection.name, version: projection.version)
        self.core = core
        self.policy = (projection as? any PoisonPolicyProviding)?.poisonEventPolicy ?? core.configuration.poisonEventPolicy
        var logger = core.logger
        logger[metadataKey: "kappa.projection"] = "\(id.name)"
        logger[metadataKey: "kappa.version"] = "\(id.version)"
        self.logger = logger
        let dimensions = [("projection", id.name), ("version", "\(id.version)")]
        self.eventsCounter = Counter(label: "kappa_projection_events_total", dimensions: dimensions)
        self.batchTimer = Metrics.Timer(label: "kappa_projection_batch_duration_seconds", dimensions: dimensions)
        self.lagGauge = Gauge(label: "kappa_projection_lag_seconds", dimensions: dimensions)
        self.lifecycle = VersionLifecycle(core: core, id: id, indexSQL: projection.indexSQL, logger: logger)
    }

    var key: LeaseKey { LeaseKey(name: id.name, version: id.version) }

    /// Creates the version's schema and tables once (under an advisory lock, so racing processes
    /// agree), registers it, and clears a failure left by an earlier run so it is tried again.
    func setUp() async throws {
        let queries = core.queries, id = self.id, projection = self.projection, logger = self.logger
        try await core.database.withReadModelTransaction { connection in
            try await connection.run("SELECT pg_advisory_xact_lock(hashtext('kappa.projection.' || \(id.schema.name)))", logger: logger)
            var registered: Int64 = 0
            for try await count in try await connection.query(queries.isRegistered(id), logger: logger).decode(Int64.self) {
                registered = count
            }
            if registered == 0 {
                try await Self.refuseForeignSchemas(id, on: connection, queries: queries, logger: logger)
                try await connection.run("CREATE SCHEMA \(unescaped: id.schema.quoted)", logger: logger)
                do {
                    try await connection.runScript(projection.setupSQL, in: id.schema, logger: logger)
                } catch {
                    throw ProjectionError(
                        .setupFailed, projection: id.name, version: id.version,
                        message: "setupSQL failed: \(String(reflecting: error))")
                }
                try await connection.run("RESET search_path", logger: logger)
                try await connection.run(queries.register(id), logger: logger)
                logger.info("projection version set up", metadata: ["kappa.schema": "\(id.schema.name)"])
            }
            try await connection.run(queries.clearFailure(id), logger: logger)
        }
    }

    func run() async {
        let logger = self.logger
        await core.runLeased(
            .projections, key, logger: logger, balanced: true,
            whenHeld: {
                do {
                    try await Rebuilder(runner: self).help()
                } catch {
                    logger.debug("helping another process's rebuild failed", metadata: ["error": "\(String(reflecting: error))"])
                }
                return .wait
            }
        ) { [core, key] lease, bell in
            defer { core.recordProgress(key, nil) }
            return try await follow(&lease, bell: bell) { core.recordProgress(key, $0) }
        }
    }

    /// Applies the log from the lease's checkpoint until stopped — in bulk first while a building
    /// version is far behind. Returns `true` when the projection stopped on a poison event (or, with
    /// `untilCaughtUp`, when it caught up); throws on a transient fault or a lost lease. What to do
    /// next is the ``FollowStateMachine``'s decision; this loop performs it.
    /// `followOn`: where a rebuild keeps the end of its follow-on for a lagging promotion across
    /// the calls of its retries.
    func follow(
        _ lease: inout Lease, bell: Doorbell, untilCaughtUp: Bool = false, followOn: FollowOnDeadline? = nil,
        progress: (@Sendable (RebuildProgress) -> Void)? = nil
    ) async throws -> Bool {
        let row = try await lifecycle.row()
        let building = row?.lifecycle == .building
        if building {
            do {
                if try await lifecycle.shouldRebuild(lease) {
                    let finished = try await Rebuilder(runner: self).run(&lease, progress: progress)
                    core.recordProgress(key, nil)
                    if !finished { return false }
                }
            } catch is Rebuilder.Stopped {
                return true
            }
        }
        let configuration = core.configuration
        var machine = FollowStateMachine(
            .init(
                batchSize: configuration.batchSize, leaseDuration: configuration.leaseDuration,
                idlePollInterval: configuration.idlePollInterval, liveCoalescing: configuration.liveCoalescing,
                untilCaughtUp: untilCaughtUp, followOnUntil: followOn?.until.withLock { $0 }),
            // A version that caught up in an earlier run and was not promoted then (behind the active one).
            building: building, promotionDue: row?.lifecycle == .caughtUp, now: .now)
        defer { followOn?.until.withLock { $0 = machine.followOnUntil } }
        var page: [RecordedEvent] = []
        var readAhead: (events: [RecordedEvent], heldBack: Bool)?
        let statistics = TableStatistics()
        var action = machine.start()
        while true {
            switch action {
            case .read(let refined):
                guard !Task.isCancelled && !core.isStopping else { return false }
                // After a committed batch (or a wait): the moment to hand the version over to the
                // runtime of the fleet it is assigned to (the lease is released on return).
                if readAhead == nil && !untilCaughtUp && core.fleet.shouldHandOver(key) {
                    logger.info(
                        "handing the lease over to balance the fleet", metadata: ["kappa.fleet_assignee": "\(core.fleet.assignment?.preferred[key] ?? "none")"])
                    return false
                }
                let heldBack: Bool, readRefined: Bool
                if let ahead = readAhead {
                    (page, heldBack, readRefined) = (ahead.events, ahead.heldBack, false)
                    readAhead = nil
                } else {
                    (page, heldBack) = try await core.database.readLog(after: lease.checkpoint, limit: configuration.batchSize, refined: refined)
                    readRefined = refined
                }
                action = machine.pageRead(events: page.count, heldBack: heldBack, refined: readRefined, now: .now)
                if page.isEmpty { lagGauge.record(0) }
            case .apply(let state, let readsAhead):
                let (stopped, ahead) = try await applyReadingAhead(page, lease: &lease, state: state, readAhead: readsAhead)
                if stopped { return true }
                readAhead = ahead
                if statistics.applied(page.count, catchingUp: page.count == configuration.batchSize) { await refreshStatistics() }
                action = machine.batchApplied(now: .now)
            case .finishBuilding:
                do {
                    // Indexing a large read model can take longer than the lease: renewed meanwhile.
                    let lifecycle = self.lifecycle, current = lease
                    try await lease.whileRenewing(state: .catchingUp, core: core) { try await lifecycle.finishBuilding(current) }
                } catch let error as ProjectionError where error.code == .setupFailed {
                    // Its indexSQL fails: trying again every few seconds would fail the same way, with
                    // the status saying live. The version fails instead, its status naming the error; the
                    // next start of the runtime tries it again.
                    _ = try await core.database.readModelRows(
                        core.queries.markFailed(id, owner: lease.owner, token: lease.token, event: nil, error: error.description)
                    ) { _ in () }
                    logger.error("projection version failed as it caught up", metadata: ["error": "\(error)"])
                    return true
                }
                action = machine.finishedBuilding(now: .now)
            case .promote:
                action = machine.promotionTried(try await lifecycle.promoteIfDue(), now: .now)
            case .renew(let state):
                try await lease.renew(state: state, core: core)
                action = machine.renewed(now: .now)
            case .wait(let timeout):
                await bell.wait(timeout: timeout)
                action = machine.rested()
            case .pause(let pause):
                await core.coalescingPause(key, for: pause)
                action = machine.rested()
            case .stop:
                return true
            }
        }
    }

    /// Applies `events` in one batch; with `readAhead`, reads the page after them meanwhile, which
    /// keeps the server and the handler busy at once while far behind. (Live, the next read waits for
    /// the commit: a page read during the batch cannot hold what is appended while the batch runs, so
    /// such an event would wait for two batches after this one instead of one — measured at 1,000
    /// appends/s: median latency 2.5 batches with the read beside the batch.) Returns whether the
    /// projection stopped, and the page read ahead when the batch ended where the lease's
    /// checkpoint now is (`nil` when the read failed: read again).
    private func applyReadingAhead(
        _ events: [RecordedEvent], lease: inout Lease, state: ProjectionStatus.State,
        readAhead: Bool
    ) async throws -> (stopped: Bool, readAhead: (events: [RecordedEvent], heldBack: Bool)?) {
        let core = self.core, after = events[events.count - 1].position, limit = core.configuration.batchSize
        async let next = readAhead ? core.database.readLog(after: after, limit: limit) : nil
        // The read is awaited even when the batch fails: leaving the scope by throwing would cancel a
        // query in flight, and a cancelled postgres-nio query can wedge the runner's next transaction.
        let outcome: Result<Bool, any Error>
        do {
            outcome = .success(try await applyIsolatingPoison(events, lease: &lease, state: state))
        } catch {
            outcome = .failure(error)
        }
        let page = try? await next
        let stopped = try outcome.get()
        return (stopped, !stopped && lease.checkpoint == after ? page : nil)
    }

    /// Applies a batch; when the handler rejects it, finds the poison event and deals with it by
    /// policy (``PoisonIsolation``). Returns `true` when the projection stopped.
    private func applyIsolatingPoison(_ events: [RecordedEvent], lease: inout Lease, state: ProjectionStatus.State) async throws -> Bool {
        // A single-statement batch's event is tried once more in a transaction of its own, so that a
        // statement that fails only as a `WITH` query (one with a data-modifying `WITH` of its own)
        // is applied instead of dead-lettered.
        try await PoisonIsolation.apply(
            events, retryingAlone: projection is any SingleStatementProjection,
            apply: { events, whole in try await apply(events, lease: &lease, state: state, inOneStatement: whole) },
            isDropped: { try await lifecycle.row()?.lifecycle == .dropped },
            poison: { event, error in try await poison(event, error, lease: &lease, state: state) })
    }

    /// One read-model transaction: the handler's writes and the fenced checkpoint move.
    private func apply(_ events: [RecordedEvent], lease: inout Lease, state: ProjectionStatus.State, inOneStatement: Bool = true) async throws {
        let relevant = self.relevant(events)
        let last = events[events.count - 1].position
        let started = ContinuousClock.now
        let current = lease, runner = self
        var sent = false
        if inOneStatement, let single = projection as? any SingleStatementProjection {
            sent = try await applyInOneStatement(single, relevant, through: last, lease: current, state: state)
        }
        if !sent, let pipeline = core.pipeline(for: key) {
            sent = try await applyPipelined(relevant, through: last, lease: current, state: state, on: pipeline)
        }
        if !sent {
            let core = self.core
            try await current.whileRenewing(state: state, core: core) {
                try await core.database.withReadModelTransaction { connection in
                    try await runner.handle(relevant, on: connection, isRebuilding: false)
                    // The fenced checkpoint last, so the lease row is locked only for a moment: a holder paused
                    // mid-batch (GC, SIGSTOP) must not stop another runner from taking the expired lease.
                    try await current.advance(to: last, applied: relevant.count, state: state, on: connection, core: core)
                }
            }
        }
        lease.checkpoint = last
        core.batchesCommitted.add(1, ordering: .relaxed)
        core.checkpointCommitted(key, at: last)
        eventsCounter.increment(by: events.count)
        batchTimer.record(duration: ContinuousClock.now - started)
        lagGauge.record(max(0, Date().timeIntervalSince(events[events.count - 1].recordedAt)))
        logger.trace("applied a batch", metadata: ["kappa.position": "\(last)", "kappa.events": "\(events.count)"])
    }

    /// The events of `events` the projection handles (``Projection/eventTypes``).
    func relevant(_ events: [RecordedEvent]) -> [RecordedEvent] {
        Self.relevant(events, types: projection.eventTypes)
    }

    /// The events of `events` whose type is among `types` (all of them for `nil`), in order; the
    /// array itself when all are (no copy of a page: the usual case for a rebuild).
    static func relevant(_ events: [RecordedEvent], types: Set<String>?) -> [RecordedEvent] {
        guard let types, let first = events.firstIndex(where: { !types.contains($0.eventType) }) else { return events }
        return Array(events[..<first]) + events[(first + 1)...].filter { types.contains($0.eventType) }
    }

    /// Hands `relevant` to the projection's handler on `connection`, in the caller's transaction;
    /// what the handler throws comes back as a ``HandlerFailure``.
    func handle(_ relevant: [RecordedEvent], on connection: PostgresConnection, isRebuilding: Bool) async throws {
        guard !relevant.isEmpty else { return }
        let context = ProjectionContext(
            .connection(connection), schema: id.schema.quoted, projection: id.name,
            version: id.version, isRebuilding: isRebuilding, logger: logger)
        do {
            try await projection.apply(relevant, in: context)
        } catch {
            throw HandlerFailure(relevant, underlying: error)
        }
    }

    /// Analyses the version's tables (``TableStatistics``): the planner's statistics and the plans of
    /// prepared statements follow what a catch-up has written. A table another session is analysing
    /// or vacuuming is skipped; the statement is cut off after a third of the lease (the loop renews the
    /// lease only between batches) and runs under the runtime's watchdog; a failure is logged, never
    /// the batch's.
    func refreshStatistics() async {
        let queries = core.queries, id = self.id, logger = self.logger
        let limit = max(1, core.configuration.leaseDuration.wholeMilliseconds / 3)
        do {
            let elapsed = try await ContinuousClock().measure {
                try await core.database.withReadModelTransaction { connection in
                    var tables: [String] = []
                    for try await table in try await connection.query(queries.versionTables(id), logger: logger).decode(String.self) { tables.append(table) }
                    guard !tables.isEmpty else { return }
                    try await connection.run("SELECT set_config('statement_timeout', \(String(limit)), true)", logger: logger)
                    // The names are the catalog's, quoted by format('%I'): nothing from outside goes into the text.
                    try await connection.run(PostgresQuery(unsafeSQL: "ANALYZE (SKIP_LOCKED) \(tables.joined(separator: ", "))"), logger: logger)
                }
            }
            logger.debug("analysed the read model's tables", metadata: ["kappa.duration": "\(elapsed)"])
        } catch {
            logger.warning("could not analyse the read model's tables", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// Deals with one event the handler rejects, by policy. Returns `true` when the projection stopped.
    private func poison(_ event: RecordedEvent, _ error: any Error, lease: inout Lease, state: ProjectionStatus.State) async throws -> Bool {
        let message = ProjectionError(
            .handlerFailed, projection: id.name, version: id.version, eventType: event.eventType,
            position: event.position, message: String(reflecting: error)
        ).description
        var logger = self.logger
        logger[metadataKey: "kappa.position"] = "\(event.position)"
        logger[metadataKey: "kappa.event_type"] = "\(event.eventType)"
        logger[metadataKey: "kappa.event_id"] = "\(event.id)"
        let queries = core.queries, id = self.id, current = lease, eventLogger = logger
        switch policy {
        case .stop:
            try await core.database.withReadModelTransaction { connection in
                try await connection.run(queries.markFailed(id, owner: current.owner, token: current.token, event: event, error: message), logger: eventLogger)
            }
            logger.error("projection stopped on an event its handler rejects", metadata: ["error": "\(message)"])
            return true
        case .deadLetter:
            try await core.database.withReadModelTransaction { connection in
                try await connection.run(queries.recordDeadLetter(id, event: event, error: message), logger: eventLogger)
                try await current.advance(to: event.position, applied: 0, state: state, on: connection, core: core)
            }
            lease.checkpoint = event.position
            core.checkpointCommitted(key, at: event.position)
            logger.error("event moved to the dead-letter table", metadata: ["error": "\(message)"])
            return false
        }
    }
}

/// A projection that chooses its own poison-event policy instead of the runtime's.
public protocol PoisonPolicyProviding {
    /// What the runtime does with an event this projection's handler keeps rejecting, in place of
    /// ``ProjectionRuntime/Configuration/poisonEventPolicy``.
    var poisonEventPolicy: PoisonEventPolicy { get }
}
