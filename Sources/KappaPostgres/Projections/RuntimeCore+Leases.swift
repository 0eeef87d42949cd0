import Logging

/// How a lease loop (``RuntimeCore/runLeased(_:_:logger:allowDropped:whenHeld:retrying:_:)``) ended.
enum LeaseLoopEnd {
    /// `follow` returned `true`: done for good.
    case finished
    /// The runtime is stopping, or the task was cancelled.
    case stopped
    /// Another holder had the lease and `whenHeld` gave up.
    case held
    /// A fault `retrying` did not retry; the lease, if held, was released.
    case failed(any Error)
}

/// What a lease loop does when another holder has the lease.
enum WhenLeaseHeld {
    /// Wait for the lease to be released or to expire (a live runner, a reactor).
    case wait
    /// Stop with ``LeaseLoopEnd/held`` (a rebuild, which must not run beside another holder).
    case giveUp
}

extension RuntimeCore {
    /// The one loop every holder of a lease runs — live runners, reactors and rebuilds: take the lease
    /// on `key`, run `follow` while holding it, and after a lost lease or a fault take it again, with
    /// exponential backoff, until `follow` returns `true` or the runtime stops.
    ///
    /// - Parameters:
    ///   - allowDropped: Whether the lease may be taken on a dropped version (a rebuild that resets it).
    ///   - whenHeld: Runs each time another holder has the lease (a runner lends its workers to the
    ///     holder's rebuild there), and says whether to wait for it or give up.
    ///   - retrying: Whether a fault, or a lost lease, is retried. One that is not ends the loop with
    ///     ``LeaseLoopEnd/failed(_:)`` after releasing the lease.
    ///   - balanced: The lease is taken only when the ``Fleet`` assigns it to this runtime, or when
    ///     its assignee leaves it free a whole lease duration (a live runner's).
    @discardableResult
    func runLeased(
        _ table: LeaseTable, _ key: LeaseKey, logger: Logger,
        balanced: Bool = false,
        allowDropped: () -> Bool = { false },
        whenHeld: () async -> WhenLeaseHeld = { .wait },
        retrying: (any Error) -> Bool = { _ in true },
        _ follow: (inout Lease, Doorbell) async throws -> Bool
    ) async -> LeaseLoopEnd {
        let bell = makeRunnerBell()
        defer { dropRunnerBell(bell) }
        var backoff = Backoff(initial: configuration.initialBackoff, maximum: configuration.maximumBackoff)
        var freeSince: ContinuousClock.Instant?, lastLook = ContinuousClock.now - configuration.leaseDuration
        while !Task.isCancelled && !isStopping {
            let started = ContinuousClock.now
            var held: Lease?
            do {
                if balanced && !fleet.shouldTake(key) {
                    // Another runtime of the fleet is to run it: look every third of a lease whether it
                    // is free, and take it once it has stayed free a whole lease (that runtime does not).
                    if started - lastLook >= configuration.leaseDuration / 3 {
                        lastLook = started
                        freeSince = try await leaseIsFree(table, key) ? (freeSince ?? started) : nil
                    }
                    guard let since = freeSince, started - since >= configuration.leaseDuration else {
                        // As when its holder has it (a runner lends its workers to the holder's rebuild).
                        if await whenHeld() == .giveUp { return .held }
                        await bell.wait(timeout: configuration.leaseDuration / 3)
                        continue
                    }
                    fleet.tookAnyway(key)
                    logger.info("taking a lease its assignee left free", metadata: ["kappa.fleet_assignee": "\(fleet.assignment?.preferred[key] ?? "none")"])
                }
                freeSince = nil
                guard var lease = try await Lease.acquire(table, key, core: self, allowDropped: allowDropped()) else {
                    if await whenHeld() == .giveUp { return .held }
                    await bell.wait(timeout: configuration.leaseDuration / 3)
                    continue
                }
                held = lease
                logger.info("took the lease", metadata: ["kappa.token": "\(lease.token)", "kappa.position": "\(lease.checkpoint)"])
                checkpointCommitted(key, at: lease.checkpoint)
                setLease(key, held: true)
                defer { setLease(key, held: false) }
                let stopped = try await follow(&lease, bell)
                await lease.release(core: self)
                if stopped { return .finished }
            } catch {
                guard retrying(error) else {
                    if let held, !(error is LeaseLost) { await held.release(core: self) }
                    return .failed(error)
                }
                if error is LeaseLost {
                    logger.warning("lost the lease to another runner")
                    continue
                }
                // A holder that made progress for a while before failing starts its backoff afresh.
                if ContinuousClock.now - started > configuration.maximumBackoff { backoff.reset() }
                let pause = backoff.next()
                logger.warning("runner fault; retrying", metadata: ["error": "\(String(reflecting: error))", "kappa.retry_in": "\(pause)"])
                try? await Task.sleep(for: pause)
            }
        }
        return .stopped
    }
}
