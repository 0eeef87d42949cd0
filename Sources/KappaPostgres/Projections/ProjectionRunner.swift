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
    }

    var key: LeaseKey { LeaseKey(name: id.name, version: id.version) }

    /// Creates the version's schema and tables once (under an advisory lock, so racing processes
    /// agree), registers it, and clears a failure left by an earlier run so it is tried again.
    func setUp() async throws {
        let queries = core.queries, id = self.id, projection = self.projection, logger = self.logger
        try await core.withReadModelTransaction { connection in
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
                    throw ProjectionError(.setupFailed, projection: id.name, version: id.version,
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
        await core.runLeased(.projections, key, logger: logger, whileWaiting: {
            do {
                try await Rebuilder(runner: self).help()
            } catch {
                logger.debug("helping another process's rebuild failed", metadata: ["error": "\(String(reflecting: error))"])
            }
        }) { [core, key] lease, bell in
            defer { core.recordProgress(key, nil) }
            return try await follow(&lease, bell: bell) { core.recordProgress(key, $0) }
        }
    }

    /// Applies the log from the lease's checkpoint until stopped — in bulk first while a building
    /// version is far behind. Returns `true` when the projection stopped on a poison event (or, with
    /// `untilCaughtUp`, when it caught up); throws on a transient fault or a lost lease.
    func follow(_ lease: inout Lease, bell: Doorbell, untilCaughtUp: Bool = false,
                progress: (@Sendable (RebuildProgress) -> Void)? = nil) async throws -> Bool {
        let batchSize = core.configuration.batchSize
        var lastRenewal = ContinuousClock.now
        var state = "catching_up"
        var prefetched: (events: [RecordedEvent], heldBack: Bool)?
        var recheck = HorizonRecheck()
        var coalescing = LiveCoalescing()
        let row = try await versionRow()
        var building = row?.lifecycle == .building
        // A version that caught up in an earlier run and was not promoted then (behind the active one).
        var promotion = PendingPromotion(due: row?.lifecycle == .caughtUp)
        if building {
            do {
                if try await shouldRebuild(lease) {
                    let finished = try await Rebuilder(runner: self).run(&lease, progress: progress)
                    core.recordProgress(key, nil)
                    if !finished { return false }
                }
            } catch is Rebuilder.Stopped {
                return true
            }
        }
        // Set when a read below the cheap horizon was held back where the runner would decide it is
        // caught up: the next read looks at the log's own horizon, which may lie further on.
        var refineNext = false
        while !Task.isCancelled && !core.isStopping {
            let (events, heldBack): ([RecordedEvent], Bool)
            var refined = false
            if let page = prefetched {
                (events, heldBack) = page
                prefetched = nil
            } else {
                refined = refineNext || recheck.refine
                (events, heldBack) = try await core.readLog(after: lease.checkpoint, limit: batchSize, refined: refined)
            }
            refineNext = false
            // Caught up is decided at the log's horizon: building, rebuilding or promoting stops there.
            let decidesAtHorizon = building || untilCaughtUp || promotion.due
            if events.isEmpty {
                lagGauge.record(0)
                if heldBack && !refined && decidesAtHorizon {
                    refineNext = true
                    continue
                }
                if try await reachedHorizon(lease, building: &building, promotion: &promotion, untilCaughtUp: untilCaughtUp) { return true }
                if state != "live" || ContinuousClock.now - lastRenewal > core.configuration.leaseDuration / 3 {
                    state = "live"
                    try await lease.renew(state: state, core: core)
                    lastRenewal = .now
                }
                await bell.wait(timeout: recheck.timeout(heldBack: heldBack, idle: core.configuration.idlePollInterval))
                continue
            }
            recheck.progressed()
            let farBehind = events.count == batchSize
            state = farBehind ? "catching_up" : "live"
            // Far behind (a full page), read the next page while this one is applied and committed:
            // that keeps the server and the handler busy at once. Live, read after the commit instead:
            // a page read during the batch cannot hold what is appended while the batch runs, so such
            // an event would wait for two batches after this one instead of one (measured at 1,000
            // appends/s: median latency 2.5 batches with the read beside the batch).
            let core = self.core, after = events[events.count - 1].position
            async let next = farBehind ? core.readLog(after: after, limit: batchSize) : nil
            // Await the read even when the batch fails: leaving the scope by throwing would cancel
            // a query in flight, and a cancelled postgres-nio query was seen to wedge the runner's
            // next transaction (the crash tests hung 1 run in 5 before this).
            let outcome: Result<Bool, any Error>
            do {
                outcome = .success(try await applyIsolatingPoison(events, lease: &lease, state: state))
            } catch {
                outcome = .failure(error)
            }
            let page = try? await next
            let stopped = try outcome.get()
            if stopped { return true }
            // Only when this page ended where the lease's checkpoint now is (it always does,
            // unless a poison event stopped it, handled above).
            prefetched = lease.checkpoint == after ? page : nil   // nil when the read failed: read again
            lastRenewal = .now
            // A page short of a batch reached the gap-free horizon: caught up as of its read, as an
            // empty read would say — which, while appends keep arriving, may never come.
            if !farBehind && heldBack && !refined && decidesAtHorizon {
                refineNext = true
            } else if !farBehind, try await reachedHorizon(lease, building: &building, promotion: &promotion, untilCaughtUp: untilCaughtUp) {
                return true
            }
            if !farBehind, let pause = coalescing.pause(after: events.count, at: .now, configured: core.configuration.liveCoalescing) {
                await core.coalescingPause(key, for: pause)
            }
        }
        return false
    }

    /// A read of the log reached the gap-free horizon (it came back empty, or short of a batch that
    /// is now applied): a building version is marked caught up, and promoted when that is due — here,
    /// where it is as far along as it gets, and again at later horizons (at most every 100 ms) while it
    /// is behind the active version. Returns `true` when the caller stops there (`untilCaughtUp`), the
    /// lease renewed as live.
    private func reachedHorizon(_ lease: Lease, building: inout Bool, promotion: inout PendingPromotion, untilCaughtUp: Bool) async throws -> Bool {
        if building {
            do {
                // Indexing a large read model can take longer than the lease: renewed meanwhile.
                let runner = self
                try await lease.whileRenewing(state: "catching_up", core: core) { try await runner.finishBuilding(lease) }
            } catch let error as ProjectionError where error.code == .setupFailed {
                // Its indexSQL fails: trying again every few seconds would fail the same way, with
                // the status saying live. The version fails instead, its status naming the error; the
                // next start of the runtime tries it again.
                _ = try await core.readModelRows(core.queries.markFailed(id, owner: lease.owner, token: lease.token, event: nil, error: error.description)) { _ in () }
                logger.error("projection version failed as it caught up", metadata: ["error": "\(error)"])
                return true
            }
            building = false
            promotion = PendingPromotion(due: true)
        }
        if promotion.due, ContinuousClock.now >= promotion.notBefore {
            promotion.due = try await !promoteIfDue()
            promotion.notBefore = .now + .milliseconds(100)
        }
        guard untilCaughtUp else { return false }
        try await lease.renew(state: "live", core: core)
        return true
    }

    /// Applies a batch; when the handler rejects it, applies its events one by one to find the
    /// poison event and deal with it by policy. Returns `true` when the projection stopped.
    private func applyIsolatingPoison(_ events: [RecordedEvent], lease: inout Lease, state: String) async throws -> Bool {
        do {
            try await apply(events, lease: &lease, state: state)
            return false
        } catch let failure as HandlerFailure where !isTransient(failure) {
            // A version dropped under a batch fails in its handler (its tables are gone): not a poison event.
            if try await versionRow()?.lifecycle == .dropped { throw LeaseLost() }
            // One event, applied as usual: it is the poison event. A single-statement batch's event is
            // tried once more in a transaction (below), so that a statement that fails only as a `WITH`
            // query (one with a data-modifying `WITH` of its own) is applied instead of dead-lettered.
            guard events.count > 1 || projection is any SingleStatementProjection else {
                return try await poison(events[0], failure.underlying, lease: &lease, state: state)
            }
        }
        for event in events {
            do {
                try await apply([event], lease: &lease, state: state, inOneStatement: false)
            } catch let failure as HandlerFailure where !isTransient(failure) {
                if try await poison(event, failure.underlying, lease: &lease, state: state) { return true }
            }
        }
        return false
    }

    /// One read-model transaction: the handler's writes and the fenced checkpoint move.
    private func apply(_ events: [RecordedEvent], lease: inout Lease, state: String, inOneStatement: Bool = true) async throws {
        let relevant = self.relevant(events)
        let last = events[events.count - 1].position
        let started = ContinuousClock.now
        let current = lease, runner = self
        var sent = false
        if inOneStatement, let single = projection as? any SingleStatementProjection {
            sent = try await applyInOneStatement(single, relevant, through: last, lease: current, state: state)
        }
        if !sent {
            let core = self.core
            try await current.whileRenewing(state: state, core: core) {
                try await core.withReadModelTransaction { connection in
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
        let context = ProjectionContext(connection: connection, schema: id.schema.quoted, projection: id.name,
                                        version: id.version, isRebuilding: isRebuilding, logger: logger)
        do {
            try await projection.apply(relevant, in: context)
        } catch {
            throw HandlerFailure(relevant, underlying: error)
        }
    }

    /// Deals with one event the handler rejects, by policy. Returns `true` when the projection stopped.
    private func poison(_ event: RecordedEvent, _ error: any Error, lease: inout Lease, state: String) async throws -> Bool {
        let message = ProjectionError(.handlerFailed, projection: id.name, version: id.version, eventType: event.eventType,
                                      position: event.position, message: String(reflecting: error)).description
        var logger = self.logger
        logger[metadataKey: "kappa.position"] = "\(event.position)"
        logger[metadataKey: "kappa.event_type"] = "\(event.eventType)"
        logger[metadataKey: "kappa.event_id"] = "\(event.id)"
        let queries = core.queries, id = self.id, current = lease, eventLogger = logger
        switch policy {
        case .stop:
            try await core.withReadModelTransaction { connection in
                try await connection.run(queries.markFailed(id, owner: current.owner, token: current.token, event: event, error: message), logger: eventLogger)
            }
            logger.error("projection stopped on an event its handler rejects", metadata: ["error": "\(message)"])
            return true
        case .deadLetter:
            try await core.withReadModelTransaction { connection in
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

/// A caught-up version's promotion, when due and not done yet, and when to try it next.
struct PendingPromotion {
    var due: Bool
    var notBefore = ContinuousClock.now
}
