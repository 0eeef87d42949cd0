/// When the ``LogNotifier`` may send its next notification, and whether appends wait for one.
///
/// Two allowances, token buckets of one notification per interval on average:
/// - Appends carry the notification in their own transaction (``claim(at:interval:listenerCheckInterval:)``)
///   while theirs has one; it holds two, so that at a steady rate of one append per interval every
///   append carries one (the burst absorbs the jitter: a strict minimum gap would leave every append
///   a little early, each then waiting for the loop).
/// - The notifier's loop notifies for appends that carried none (``claimForLoop(at:interval:)``) from
///   an allowance of its own, no sooner than half an interval after the last notification of either
///   kind. Sharing one allowance, the loop would spend each token as it accrued, mid-interval, and
///   no append would find one again: each would wait half an interval for the loop. Apart, above
///   one append per interval notifications go out about every half interval.
///
/// The server commits notifying transactions one at a time, each holding a global lock through its
/// flush. Many processes each carrying notifications can queue their appends behind it (measured
/// here: 16 clients carrying 3,200 a second got 2,300 through, at 1.9 s each); so carried
/// notifications are held to one per interval and to one in flight (an append claims the next only
/// once the last has committed or given it back: while flushes are slow, the appends between do
/// not queue behind the lock), an append that took longer than ``slowAppend`` while carrying one
/// stops appends carrying them for ``pauseAfterSlowAppend``, and the loop's separate notifications
/// (which do not wait for the disk) serve meanwhile.
struct NotificationSchedule: Sendable {
    /// Notifications appends may carry at once after a quiet spell.
    static let burst = 2.0
    /// A carried append slower than this pauses carrying.
    static let slowAppend = Duration.milliseconds(100)
    /// How long appends carry no notification after a slow one did.
    static let pauseAfterSlowAppend = Duration.seconds(1)

    /// Whether a follower of another process listened at the last look.
    var othersListen = false
    /// When the notifier last looked for listeners.
    var checked: ContinuousClock.Instant?
    /// Whether an append committed since the last claim, which no notification will follow.
    var uncovered = false
    /// Whether an append has claimed a notification and not yet reported on it.
    private(set) var inFlight = false
    /// Until when appends carry no notification.
    private(set) var carryingPausedUntil: ContinuousClock.Instant?
    private var appends = Allowance(burst: Self.burst)
    private var loop = Allowance(burst: 1)
    /// When the last notification was sent, by an append or the loop.
    private var lastSent: ContinuousClock.Instant?

    /// When the loop may send its next notification (at `now` or later).
    func nextDue(at now: ContinuousClock.Instant, interval: Duration) -> ContinuousClock.Instant {
        let spaced = lastSent.map { $0 + interval / 2 } ?? now
        return max(now, loop.due(at: now, interval: interval), spaced)
    }

    /// An append about to be sent claims the notification if others listen and the appends'
    /// allowance has one. It then covers every append committed before it. `stale`: the notifier
    /// should look for listeners again.
    mutating func claim(
        at now: ContinuousClock.Instant, interval: Duration, listenerCheckInterval: Duration
    ) -> (claimed: Bool, stale: Bool) {
        let stale = checked.map { now - $0 >= listenerCheckInterval } ?? false
        guard othersListen, !inFlight, carryingPausedUntil.map({ $0 <= now }) ?? true, appends.take(at: now, interval: interval) else {
            return (false, stale)
        }
        inFlight = true
        uncovered = false
        lastSent = now
        return (true, stale)
    }

    /// An append that carried the notification committed at `now`, `took` after it claimed it.
    mutating func carried(took: Duration, at now: ContinuousClock.Instant) {
        inFlight = false
        if took > Self.slowAppend { carryingPausedUntil = now + Self.pauseAfterSlowAppend }
    }

    /// An append that claimed the notification sent it without one, or wrote nothing: the appends
    /// it would have covered are the loop's.
    mutating func notCarried() {
        inFlight = false
        uncovered = true
    }

    /// The notifier's loop claims the notification for the appends not covered, once it is due.
    mutating func claimForLoop(at now: ContinuousClock.Instant, interval: Duration) -> Bool {
        guard uncovered, nextDue(at: now, interval: interval) <= now, loop.take(at: now, interval: interval) else { return false }
        uncovered = false
        lastSent = now
        return true
    }
}

/// A token bucket: one notification per interval on average, at most `burst` at once.
private struct Allowance: Sendable {
    let burst: Double
    private var tokens: Double
    private var refilled: ContinuousClock.Instant?

    init(burst: Double) {
        self.burst = burst
        self.tokens = burst
    }

    func due(at now: ContinuousClock.Instant, interval: Duration) -> ContinuousClock.Instant {
        let tokens = available(at: now, interval: interval)
        return tokens >= 1 ? now : now + interval * (1 - tokens)
    }

    mutating func take(at now: ContinuousClock.Instant, interval: Duration) -> Bool {
        let available = available(at: now, interval: interval)
        guard available >= 1 else { return false }
        tokens = available - 1
        refilled = now
        return true
    }

    private func available(at now: ContinuousClock.Instant, interval: Duration) -> Double {
        guard let refilled, interval > .zero else { return burst }
        return min(burst, tokens + max(0, (now - refilled) / interval))
    }
}
