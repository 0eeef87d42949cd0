import Kappa

extension ProjectionRuntime {
    /// Starts running `projection` — typically a new version of a read model — in this runtime while it
    /// runs, without a restart. The version's schema and tables are created now; the runtime then
    /// builds it from the log (in bulk while it is far behind), follows the log live once caught up,
    /// and promotes it if ``Configuration/promoteWhenCaughtUp`` is set. Its progress is in ``status()``
    /// and, while it rebuilds in bulk, ``rebuildProgress()``.
    ///
    /// ```swift
    /// try await runtime.start(CartSummaryV2())
    /// // … later, once `status()` shows it caught up:
    /// try await runtime.versions.promote("cart_summary", version: 2)
    /// ```
    /// A version started before ``run()`` runs once the runtime runs.
    /// - Throws: ``ProjectionError`` — `duplicateProjection` when this runtime already runs that name and
    ///   version, `setupFailed` when its `setupSQL` fails, `unknownProjection` when the runtime has
    ///   stopped; ``KappaPostgresError`` for an invalid name.
    public func start(_ projection: any Projection) async throws {
        let id = try ProjectionID(name: projection.name, version: projection.version)
        try ProjectionID.checkNotClashing(id.name, with: [core.configuration.schema, core.log.configuration.schema])
        guard registry.add(projection) else {
            throw ProjectionError(.duplicateProjection, projection: id.name, version: id.version, message: "is already run by this runtime")
        }
        do {
            try await migrate()
            let runner = try ProjectionRunner(projection: projection, core: core)
            try await runner.setUp()
            guard !core.isStopping, registry.hand(runner) else {
                throw ProjectionError(
                    .unknownProjection, projection: id.name, version: id.version,
                    message: "cannot start: the projection runtime has stopped")
            }
            core.logger.info("projection version started", metadata: ["kappa.projection": "\(id.name)", "kappa.version": "\(id.version)"])
        } catch {
            registry.remove(projection)
            throw error
        }
    }

    /// The bulk rebuilds this runtime's runners are doing now, with events done and total. Empty when
    /// every version is live (a version being rebuilt by another process shows in that process).
    public func rebuildProgress() -> [RebuildProgress] {
        core.rebuildProgress()
    }
}
