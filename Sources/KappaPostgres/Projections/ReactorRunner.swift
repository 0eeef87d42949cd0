import Foundation
import Kappa
import Logging
import PostgresNIO

/// Runs one reactor: takes its lease, then hands it each new event and moves its own checkpoint
/// after each, live only — a reactor has no rebuild mode.
struct ReactorRunner: Sendable {
    let reactor: any Reactor
    let key: LeaseKey
    let core: RuntimeCore
    let logger: Logger

    init(reactor: any Reactor, core: RuntimeCore) throws {
        _ = try ProjectionID(name: reactor.name, version: 1)
        self.reactor = reactor
        self.key = LeaseKey(name: reactor.name, version: 0)
        self.core = core
        var logger = core.logger
        logger[metadataKey: "kappa.reactor"] = "\(reactor.name)"
        self.logger = logger
    }

    /// Registers the reactor once, starting at the log's current horizon (``ReactorStart/now``)
    /// or at the beginning.
    func setUp() async throws {
        let start = reactor.start == .now ? try await core.log.head() : .start
        _ = try await core.database.readModelRows(core.queries.registerReactor(reactor.name, start: start)) { _ in () }
    }

    func run() async {
        await core.runLeased(.reactors, key, logger: logger) { lease, bell in
            try await follow(&lease, bell: bell)
            return false
        }
    }

    private func follow(_ lease: inout Lease, bell: Doorbell) async throws {
        var lastRenewal = ContinuousClock.now
        var recheck = HorizonRecheck()
        while !Task.isCancelled && !core.isStopping {
            let (events, heldBack) = try await core.database.readLog(after: lease.checkpoint, limit: core.configuration.batchSize, refined: recheck.refine)
            if events.isEmpty {
                if ContinuousClock.now - lastRenewal > core.configuration.leaseDuration / 3 {
                    try await lease.renew(state: .live, core: core)
                    lastRenewal = .now
                }
                await bell.wait(timeout: recheck.timeout(heldBack: heldBack, idle: core.configuration.idlePollInterval))
                continue
            }
            recheck.progressed()
            for event in events {
                if reactor.eventTypes?.contains(event.eventType) ?? true {
                    guard try await react(to: event, lease: lease, lastRenewal: &lastRenewal) else { return }
                }
                let current = lease
                try await core.database.withReadModelTransaction { connection in
                    try await current.advance(to: event.position, applied: 1, state: .live, on: connection, core: core)
                }
                lease.checkpoint = event.position
                lastRenewal = .now
                if core.isStopping { return }
            }
        }
    }

    /// Hands the reactor one event, retrying failures with backoff: a reactor's effect is at least once.
    /// The lease is renewed between retries, so a reactor retrying for longer than the lease lasts
    /// (a service down for minutes) keeps it, and another process does not act on the same event
    /// beside it; a lost lease ends the retries (``LeaseLost``).
    /// - Returns: `true` once the reactor returned; `false` when the runtime is stopping (the
    ///   checkpoint stays, the event is handed over again by the next run).
    private func react(to event: RecordedEvent, lease: Lease, lastRenewal: inout ContinuousClock.Instant) async throws -> Bool {
        var backoff = Backoff(initial: core.configuration.initialBackoff, maximum: core.configuration.maximumBackoff)
        while true {
            do {
                try await reactor.react(to: event)
                return true
            } catch {
                if Task.isCancelled || core.isStopping { return false }
                logger.warning(
                    "reactor rejected an event; retrying",
                    metadata: [
                        "kappa.position": "\(event.position)", "kappa.event_type": "\(event.eventType)", "error": "\(String(reflecting: error))",
                    ])
                try? await Task.sleep(for: backoff.next())
                if Task.isCancelled || core.isStopping { return false }
                if ContinuousClock.now - lastRenewal > core.configuration.leaseDuration / 3 {
                    try await lease.renew(state: .live, core: core)
                    lastRenewal = .now
                }
            }
        }
    }
}
