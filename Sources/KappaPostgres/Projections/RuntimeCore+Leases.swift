import Logging

extension RuntimeCore {
    /// The loop every runner shares: take the lease on `key` (waiting while another runner holds it),
    /// run `follow` while holding it, and after a lost lease or a fault take it again, with
    /// exponential backoff, until the runtime stops. `follow` returns `true` to stop for good.
    /// `whileWaiting` runs each time the lease is found held by another runner (a runner lends its
    /// workers to a rebuild the holder coordinates).
    func runLeased(
        _ table: LeaseTable, _ key: LeaseKey, logger: Logger, whileWaiting: (() async -> Void)? = nil,
        _ follow: (inout Lease, Doorbell) async throws -> Bool
    ) async {
        let bell = makeRunnerBell()
        defer { dropRunnerBell(bell) }
        var backoff = Backoff(initial: configuration.initialBackoff, maximum: configuration.maximumBackoff)
        while !Task.isCancelled && !isStopping {
            let started = ContinuousClock.now
            do {
                guard var lease = try await Lease.acquire(table, key, core: self) else {
                    await whileWaiting?()
                    await bell.wait(timeout: configuration.leaseDuration / 3)
                    continue
                }
                logger.info("took the lease", metadata: ["kappa.token": "\(lease.token)", "kappa.position": "\(lease.checkpoint)"])
                checkpointCommitted(key, at: lease.checkpoint)
                setLease(key, held: true)
                defer { setLease(key, held: false) }
                let stopped = try await follow(&lease, bell)
                await lease.release(core: self)
                if stopped { return }
            } catch is LeaseLost {
                logger.warning("lost the lease to another runner")
            } catch {
                // A runner that made progress for a while before failing starts its backoff afresh.
                if ContinuousClock.now - started > configuration.maximumBackoff { backoff.reset() }
                let pause = backoff.next()
                logger.warning(
                    "runner fault; retrying",
                    metadata: [
                        "error": "\(String(reflecting: error))", "kappa.retry_in": "\(pause)",
                    ])
                try? await Task.sleep(for: pause)
            }
        }
    }
}
