import Foundation
import Kappa
import Logging
import PostgresNIO

extension ProjectionVersions {
    /// Builds `version` of `name` from the log, in bulk, until it has caught up with the head — in
    /// this process, holding the version's lease — then releases it to whichever runtime follows the
    /// version live. The projection (its handler code) must be among this value's `projections`.
    /// A projection's first version is active when this returns: while the log runs more than
    /// ``ProjectionRuntime/Configuration/maximumPromotionLag`` events ahead of it, the rebuild follows
    /// on (at most 30 s; then it returns with the version caught up, not active, and logs a warning).
    ///
    /// - Parameters:
    ///   - name: The projection.
    ///   - version: The version to build; its code must be among `projections`.
    ///   - fromScratch: Drop the version's tables and start from the first event. Otherwise a rebuild
    ///     goes on from the version's checkpoint (or from a rebuild that was interrupted).
    ///   - promote: Promote the version once it has caught up.
    ///   - progress: Called a few times a second while the bulk rebuild runs.
    /// - Throws: ``ProjectionError`` — `unknownProjection` (not registered here), `versionBelowActive`,
    ///   `versionIsActive` (rebuilding the serving version from scratch would empty what readers see),
    ///   `rebuildInProgress` (another process holds the version), `handlerFailed` (stopped on a poison event).
    public func rebuild(
        _ name: String, version: Int, fromScratch: Bool = true, promote: Bool = false,
        progress: (@Sendable (RebuildProgress) -> Void)? = nil
    ) async throws {
        _ = try ProjectionID(name: name, version: version) // a bad name never reaches SQL
        guard let projection = projections.first(where: { $0.name == name && $0.version == version }) else {
            throw ProjectionError(
                .unknownProjection, projection: name, version: version,
                message: "is not registered with this program; its handler code must be in the executable that rebuilds it")
        }
        try await migrate()
        let rows = try await versions(of: name)
        let row = rows.first { $0.version == version }
        if let active = rows.first(where: { $0.lifecycle == .active }) {
            if version < active.version {
                throw ProjectionError(
                    .versionBelowActive, projection: name, version: version,
                    message: "is lower than the active version \(active.version); build a new, higher version instead")
            }
            if version == active.version && fromScratch {
                throw ProjectionError(
                    .versionIsActive, projection: name, version: version,
                    message: "is the active version; rebuilding it from scratch would empty what readers see — build a new version")
            }
        }
        if let owner = row?.leaseOwner {
            throw ProjectionError(
                .rebuildInProgress, projection: name, version: version,
                message: "is being run by \(owner) (a rebuild, or a runtime following it); stop that first")
        }
        try await VersionLifecycle.rebuild(
            projection, core: core, fromScratch: fromScratch || row?.lifecycle == .dropped, progress: progress)
        let after = try await versions(of: name).filter { $0.lifecycle != .dropped }
        if let failed = after.first(where: { $0.version == version }), failed.state == .failed {
            throw ProjectionError(
                .handlerFailed, projection: name, version: version,
                message: "the rebuild stopped on an event its handler rejects; see the projection's status")
        }
        let active = after.first { $0.lifecycle == .active }?.version
        if promote {
            if active != version { try await self.promote(name, version: version) }
        } else if active == nil, after.map(\.version).min() == version {
            // The first version of a projection was made active when it caught up, unless the log
            // kept running ahead of it (or the switch was refused, logged as it happened).
            core.logger.warning(
                "the rebuilt first version caught up but is not active: a runtime following it promotes it once within maximumPromotionLag, or promote it",
                metadata: ["kappa.projection": "\(name)", "kappa.version": "\(version)"])
        }
    }
}
