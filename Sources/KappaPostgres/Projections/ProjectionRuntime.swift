import Foundation
import Kappa
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Keeps read models up to date from the log: a `Service` that runs every registered projection and
/// reactor, catching up from its checkpoint and then following the log live.
///
/// ```swift
/// let runtime = try ProjectionRuntime(log: store, readModels: readModelClient,
///                                     projections: [CartSummary()], notifier: notifier, logger: logger)
/// let group = ServiceGroup(services: [logClient, readModelClient, notifier, runtime], logger: logger)
/// try await group.run()
/// ```
/// - Exactly once: a batch's read-model writes and its checkpoint commit in one transaction of the
///   read-model database (the log's own database, or another).
/// - One runner per projection across processes: a lease with a fencing token; the token is checked
///   in the statement that moves the checkpoint, so a runner that lost its lease cannot commit.
/// - On graceful shutdown it finishes the batch in flight, commits, and releases its leases.
public struct ProjectionRuntime: Service {
    let core: RuntimeCore
    let registry: ProjectionRegistry
    /// The projections given at creation; ``run()`` starts these, ``start(_:)`` the others.
    let initial: [any Projection]
    let reactors: [any Reactor]

    /// - Parameters:
    ///   - log: The event store to read.
    ///   - readModels: The read-model database's client (may be the log's client).
    ///   - projections: The projection versions ``run()`` starts (others can be started with ``start(_:)``).
    ///   - reactors: The reactors ``run()`` starts.
    ///   - notifier: The ``LogNotifier`` the store rings, for immediate wake-ups in this process.
    ///   - configuration: Schemas, leases, batches, timeouts (defaults documented on ``Configuration``).
    ///   - logger: Where the runtime logs (`kappa.*` metadata).
    /// - Throws: ``KappaPostgresError`` for an invalid name, ``ProjectionError/Code/duplicateProjection``.
    public init(
        log: PostgresEventStore, readModels: PostgresClient, projections: [any Projection], reactors: [any Reactor] = [],
        notifier: LogNotifier? = nil, configuration: Configuration = .init(), logger: Logger
    ) throws {
        var seen = Set<LeaseKey>()
        for projection in projections {
            let id = try ProjectionID(name: projection.name, version: projection.version)
            try ProjectionID.checkNotClashing(id.name, with: [configuration.schema, log.configuration.schema])
            guard seen.insert(LeaseKey(name: id.name, version: id.version)).inserted else {
                throw ProjectionError(.duplicateProjection, projection: id.name, version: id.version, message: "registered twice")
            }
        }
        for reactor in reactors {
            _ = try ProjectionID(name: reactor.name, version: 1)
            guard seen.insert(LeaseKey(name: "reactor:\(reactor.name)", version: 0)).inserted else {
                throw ProjectionError(.duplicateProjection, projection: reactor.name, message: "reactor registered twice")
            }
        }
        self.core = try RuntimeCore(log: log, readModels: readModels, notifier: notifier, configuration: configuration, logger: logger)
        self.registry = ProjectionRegistry(projections)
        self.initial = projections
        self.reactors = reactors
    }

    /// The operations on projection versions (promote, rollback, compare, drop, rebuild), with this
    /// runtime's configuration and projections.
    public var versions: ProjectionVersions { ProjectionVersions(core: core, projections: registry.all) }

    /// Notifications from other processes' notifiers that woke this runtime's runners so far.
    package var notificationsReceived: Int { core.notificationsReceived.load(ordering: .relaxed) }

    /// Live batches (read-model transactions) its projections' runners have committed so far.
    package var batchesCommitted: Int { core.batchesCommitted.load(ordering: .relaxed) }

    /// Of those, the batches whose writes and checkpoint move were one statement.
    package var singleStatementBatches: Int { core.singleStatementBatches.load(ordering: .relaxed) }

    /// Of those, the batches sent in one round trip through libpq's pipeline mode.
    package var pipelinedBatches: Int { core.pipelinedBatches.load(ordering: .relaxed) }

    /// Bulk-rebuild batches its runners sent in one round trip through libpq's pipeline mode.
    package var pipelinedRebuildBatches: Int { core.pipelinedRebuildBatches.load(ordering: .relaxed) }

    /// Coalescing pauses its live runners have made so far (not those a read-your-writes wait skipped).
    package var coalescingPauses: Int { core.coalescingPauses.load(ordering: .relaxed) }

    /// The projections this runtime runs: those it was created with and those ``start(_:)`` added.
    var projections: [any Projection] { registry.all }

    /// Creates or updates the runtime's tables in the read-model database (idempotent; ``run()`` does it too).
    public func migrate() async throws {
        try await versions.migrate()
    }

    /// Sets up every projection, then runs them all until cancelled or shut down gracefully.
    /// - Throws: at start-up only, when the runtime's tables or a projection's `setupSQL` cannot be
    ///   created. Faults that pass (a lost connection, the server restarting or failing over) are
    ///   retried with backoff until the runtime is shut down.
    public func run() async throws {
        // Once this returns (or throws), ``start(_:)`` refuses: nothing would run what it hands over.
        defer { registry.finish() }
        let runners = try initial.map { try ProjectionRunner(projection: $0, core: core) }
        let reactorRunners = try reactors.map { try ReactorRunner(reactor: $0, core: core) }
        // A fault that passes (the server restarting or failing over, a killed connection) is retried
        // until the runtime is stopped; anything else ends the start.
        guard
            try await core.retryingTransientFaults(
                "starting",
                {
                    try await migrate()
                    try await core.checkPipelineTarget()
                    for runner in runners { try await runner.setUp() }
                    for runner in reactorRunners { try await runner.setUp() }
                })
        else { return }
        core.logger.info(
            "projection runtime started",
            metadata: [
                "kappa.owner": "\(core.configuration.owner)", "kappa.projections": "\(projections.count)", "kappa.reactors": "\(reactors.count)",
            ])
        let registry = self.registry
        @Sendable func keys() -> [LeaseKey] { registry.all.map { LeaseKey(name: $0.name, version: $0.version) } }
        // Known to the fleet before any runner looks at its assignment.
        await core.renewFleetMembership(keys: keys())
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { outer in
                outer.addTask { await core.keepFleetMembership(keys: keys) }
                if core.configuration.listenForAppends {
                    outer.addTask { await core.listenForAppends() }
                }
                await withDiscardingTaskGroup { group in
                    for runner in runners { group.addTask { await runner.run() } }
                    for runner in reactorRunners { group.addTask { await runner.run() } }
                    // Versions started while running (``start(_:)``), until the runtime stops.
                    for await runner in registry.started { group.addTask { await runner.run() } }
                }
                // A projection stopped on a poison event leaves the others (and read-your-writes
                // waits, and status) running: the runtime itself stops only when told to.
                await core.waitUntilStopped()
                outer.cancelAll()
            }
        } onGracefulShutdown: {
            core.stop()
            registry.finish()
        }
        await core.leaveFleet()
        core.pipeline?.close()
        core.logger.info("projection runtime stopped", metadata: ["kappa.owner": "\(core.configuration.owner)"])
    }
}
