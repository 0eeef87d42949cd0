/// The decisions of a projection runner's follow loop, without I/O.
///
/// The runner (the driver) performs each ``Action`` against the database and reports its outcome;
/// the machine answers with the next action. It knows what the runner knows between two actions —
/// whether the version is still building, whether its promotion is due, when the lease was last
/// renewed, how long reads have been held back — and every instant comes from the caller, so its
/// decisions are unit-tested with a clock the test moves.
///
/// One turn of the loop: read a page after the checkpoint; a full page is applied with the next page
/// read meanwhile, and the loop reads on; a short or empty page reached the gap-free horizon, where a
/// building version finishes building, a caught-up one is promoted (when due, at most every 100 ms),
/// and a follow `untilCaughtUp` stops — unless its promotion is due and refused only because the
/// version lags, when it follows on until the promotion succeeds (for at most 30 s). Then an empty read renews the lease when it is due and waits
/// for the doorbell; a short batch may pause so that the next one carries more events
/// (``LiveCoalescing``).
struct FollowStateMachine {
    /// What the runner does next.
    enum Action: Equatable {
        /// Read the next page after the checkpoint; `refined` looks past open transactions that cannot
        /// append (``HorizonRecheck/refine``). A page the runner read ahead is taken instead, if it
        /// holds one, and reported as not refined.
        case read(refined: Bool)
        /// Apply the page just read in one batch with the fenced checkpoint, reporting `state`; with
        /// `readAhead`, read the following page while it runs.
        case apply(state: ProjectionStatus.State, readAhead: Bool)
        /// Finish building the version: indexes, logged tables, statistics, marked caught up.
        case finishBuilding
        /// Promote the caught-up version if that is due.
        case promote
        /// Renew the lease, reporting `state`.
        case renew(ProjectionStatus.State)
        /// Wait for the doorbell at most this long, then read.
        case wait(Duration)
        /// Pause this long (read-your-writes waits cut it short), then read.
        case pause(Duration)
        /// Stop following: the version caught up (for a follow `untilCaughtUp`).
        case stop
    }

    /// What the machine needs of the runtime's configuration.
    struct Configuration {
        var batchSize: Int
        var leaseDuration: Duration
        var idlePollInterval: Duration
        var liveCoalescing: Duration
        /// Stop at the first horizon (a rebuild's last stretch, a test).
        var untilCaughtUp = false
        /// Until when a follow `untilCaughtUp` follows on for a lagging promotion, as an earlier
        /// machine of the same rebuild set it (`nil`: from this machine's first refusal).
        var followOnUntil: ContinuousClock.Instant?
    }

    /// How long a promotion that was not possible yet waits before the next try.
    static let promotionRetry = Duration.milliseconds(100)

    /// How long a follow `untilCaughtUp` follows on for a promotion refused because the version lags.
    static let promotionFollowOn = Duration.seconds(30)

    /// How a promotion the machine asked for went.
    enum Promotion: Equatable {
        /// Promoted, not due, or refused for good: nothing more to try.
        case settled
        /// Not yet: the version lags the log or the active version. A follow `untilCaughtUp` follows
        /// on until it is promoted, so that a rebuild returns with its first version serving.
        case behind
        /// Not yet, for a reason this runner's following does not clear: a lower version is to be
        /// promoted first, or the version cannot serve now. A follow `untilCaughtUp` does not wait for it.
        case notByFollowing
    }

    /// Where a turn reached the horizon, which says how it goes on from there.
    private enum Horizon: Equatable {
        case emptyRead(heldBack: Bool)
        case batch(events: Int)
    }

    private enum Step: Equatable {
        case reading
        case applying(events: Int, heldBack: Bool, refined: Bool)
        case finishingBuilding(Horizon)
        case promoting(Horizon)
        case renewing(then: Horizon?)
        case resting
        case stopped
    }

    let configuration: Configuration
    private var step = Step.reading
    private(set) var building: Bool
    private(set) var promotionDue: Bool
    /// The last promotion tried was refused because the version lags: a follow `untilCaughtUp` goes on.
    private var promotionBehind = false
    /// Until when a follow `untilCaughtUp` follows on for its lagging promotion (set at the first refusal).
    private(set) var followOnUntil: ContinuousClock.Instant?
    private var promotionNotBefore: ContinuousClock.Instant
    private var state = ProjectionStatus.State.catchingUp
    private var lastRenewal: ContinuousClock.Instant
    /// Set when a read below the cheap horizon was held back where the runner would decide it is
    /// caught up: the next read looks at the log's own horizon, which may lie further on.
    private var refineNext = false
    private var recheck = HorizonRecheck()
    private var coalescing = LiveCoalescing()

    /// - Parameters:
    ///   - building: the version is building (it finishes at its first horizon).
    ///   - promotionDue: the version caught up in an earlier run and was not promoted then.
    ///   - now: when the lease was taken.
    init(_ configuration: Configuration, building: Bool, promotionDue: Bool, now: ContinuousClock.Instant) {
        self.configuration = configuration
        self.followOnUntil = configuration.followOnUntil
        self.building = building
        self.promotionDue = promotionDue
        self.promotionNotBefore = now
        self.lastRenewal = now
    }

    /// The first action, once the lease is held.
    mutating func start() -> Action { read() }

    /// A page of `events` events came back; `heldBack` when committed events wait beyond the horizon
    /// the read used.
    mutating func pageRead(events: Int, heldBack: Bool, refined: Bool, now: ContinuousClock.Instant) -> Action {
        precondition(step == .reading, "a page read while \(step)")
        if events == 0 {
            if heldBack && !refined && decidesAtHorizon {
                refineNext = true
                return read()
            }
            return reachedHorizon(.emptyRead(heldBack: heldBack), now: now)
        }
        recheck.progressed()
        let farBehind = events >= configuration.batchSize
        state = farBehind ? .catchingUp : .live
        step = .applying(events: events, heldBack: heldBack, refined: refined)
        return .apply(state: state, readAhead: farBehind)
    }

    /// The batch committed with its checkpoint (which renewed the lease).
    mutating func batchApplied(now: ContinuousClock.Instant) -> Action {
        guard case .applying(let events, let heldBack, let refined) = step else {
            preconditionFailure("a batch applied while \(step)")
        }
        lastRenewal = now
        // A full page: more is waiting, and the next page is already on its way.
        guard events < configuration.batchSize else { return read() }
        // A short page reached the horizon as of its read, as an empty read would say — which, while
        // appends keep arriving, may never come. Held back, it is looked at again past the horizon.
        if heldBack && !refined && decidesAtHorizon {
            refineNext = true
            return goOn(after: .batch(events: events), now: now)
        }
        return reachedHorizon(.batch(events: events), now: now)
    }

    /// The version finished building and is caught up.
    mutating func finishedBuilding(now: ContinuousClock.Instant) -> Action {
        guard case .finishingBuilding(let horizon) = step else { preconditionFailure("finished building while \(step)") }
        building = false
        promotionDue = true
        promotionNotBefore = now
        return promoteOrGoOn(horizon, now: now)
    }

    /// A promotion was tried.
    mutating func promotionTried(_ outcome: Promotion, now: ContinuousClock.Instant) -> Action {
        guard case .promoting(let horizon) = step else { preconditionFailure("a promotion tried while \(step)") }
        promotionDue = outcome != .settled
        promotionBehind = outcome == .behind
        if promotionBehind && followOnUntil == nil { followOnUntil = now + Self.promotionFollowOn }
        promotionNotBefore = now + Self.promotionRetry
        return stopOrGoOn(horizon, now: now)
    }

    /// The lease was renewed.
    mutating func renewed(now: ContinuousClock.Instant) -> Action {
        guard case .renewing(let then) = step else { preconditionFailure("renewed while \(step)") }
        lastRenewal = now
        guard case .emptyRead(let heldBack) = then else {
            step = .stopped
            return .stop
        }
        return rest(heldBack: heldBack)
    }

    /// A wait or a pause ended.
    mutating func rested() -> Action {
        precondition(step == .resting, "rested while \(step)")
        return read()
    }

    // MARK: - Steps

    /// Caught up is decided at the log's horizon: building, rebuilding or promoting stops there.
    private var decidesAtHorizon: Bool { building || configuration.untilCaughtUp || promotionDue }

    private mutating func read() -> Action {
        let refined = refineNext || recheck.refine
        refineNext = false
        step = .reading
        return .read(refined: refined)
    }

    private mutating func reachedHorizon(_ horizon: Horizon, now: ContinuousClock.Instant) -> Action {
        if building {
            step = .finishingBuilding(horizon)
            return .finishBuilding
        }
        return promoteOrGoOn(horizon, now: now)
    }

    private mutating func promoteOrGoOn(_ horizon: Horizon, now: ContinuousClock.Instant) -> Action {
        if promotionDue && now >= promotionNotBefore {
            step = .promoting(horizon)
            return .promote
        }
        return stopOrGoOn(horizon, now: now)
    }

    private mutating func stopOrGoOn(_ horizon: Horizon, now: ContinuousClock.Instant) -> Action {
        let followingOn = promotionDue && promotionBehind && followOnUntil.map { now < $0 } ?? false
        guard configuration.untilCaughtUp, !followingOn else { return goOn(after: horizon, now: now) }
        state = .live
        step = .renewing(then: nil)
        return .renew(.live)
    }

    /// Past the horizon: an empty read renews the lease when due and waits; a short batch may pause.
    private mutating func goOn(after horizon: Horizon, now: ContinuousClock.Instant) -> Action {
        switch horizon {
        case .emptyRead(let heldBack):
            if state != .live || now - lastRenewal > configuration.leaseDuration / 3 {
                state = .live
                step = .renewing(then: horizon)
                return .renew(.live)
            }
            return rest(heldBack: heldBack)
        case .batch(let events):
            guard let pause = coalescing.pause(after: events, at: now, configured: configuration.liveCoalescing) else {
                return read()
            }
            step = .resting
            return .pause(pause)
        }
    }

    private mutating func rest(heldBack: Bool) -> Action {
        step = .resting
        return .wait(recheck.timeout(heldBack: heldBack, idle: configuration.idlePollInterval))
    }
}
