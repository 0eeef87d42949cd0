/// When the ``LogNotifier`` may send its next notification, and whether appends wait for one.
///
/// A token bucket: one notification's worth of allowance accrues per interval, up to ``burst``. A
/// notification is sent by an append in its own transaction (``claim(at:interval:listenerCheckInterval:)``),
/// or by the notifier's loop for appends that carried none (``claimForLoop(at:interval:)``). At a
/// steady rate of one append per interval, every append carries one (the burst absorbs the jitter:
/// a strict minimum gap would leave every append a little early, each then waiting for the loop).
///
/// The server commits notifying transactions one at a time, each holding a global lock through its
/// flush. Many processes each carrying notifications can queue their appends behind it (measured
/// here: 16 clients carrying 3,200 a second got 2,300 through, at 1.9 s each); so an append that took
/// longer than ``slowAppend`` while carrying one stops appends carrying them for
/// ``pauseAfterSlowAppend``, and the loop's separate notifications (which do not wait for the disk) serve meanwhile.
struct NotificationSchedule: Sendable {
    /// Notifications that may be sent at once after a quiet spell.
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
    /// Until when appends carry no notification.
    private(set) var carryingPausedUntil: ContinuousClock.Instant?
    private var tokens = Self.burst
    private var refilled: ContinuousClock.Instant?

    /// When the next notification may be sent (at `now` or later).
    func nextDue(at now: ContinuousClock.Instant, interval: Duration) -> ContinuousClock.Instant {
        let tokens = available(at: now, interval: interval)
        return tokens >= 1 ? now : now + interval * (1 - tokens)
    }

    /// An append about to be sent claims the notification if others listen and the allowance has one.
    /// It then covers every append committed before it. `stale`: the notifier should look for
    /// listeners again.
    mutating func claim(
        at now: ContinuousClock.Instant, interval: Duration, listenerCheckInterval: Duration
    ) -> (claimed: Bool, stale: Bool) {
        let stale = checked.map { now - $0 >= listenerCheckInterval } ?? false
        guard othersListen, carryingPausedUntil.map({ $0 <= now }) ?? true, take(at: now, interval: interval) else {
            return (false, stale)
        }
        uncovered = false
        return (true, stale)
    }

    /// An append that carried the notification committed at `now`, `took` after it claimed it.
    mutating func carried(took: Duration, at now: ContinuousClock.Instant) {
        if took > Self.slowAppend { carryingPausedUntil = now + Self.pauseAfterSlowAppend }
    }

    /// The notifier's loop claims the notification for the appends not covered, once it is due.
    mutating func claimForLoop(at now: ContinuousClock.Instant, interval: Duration) -> Bool {
        guard uncovered, take(at: now, interval: interval) else { return false }
        uncovered = false
        return true
    }

    private func available(at now: ContinuousClock.Instant, interval: Duration) -> Double {
        guard let refilled, interval > .zero else { return Self.burst }
        return min(Self.burst, tokens + max(0, (now - refilled) / interval))
    }

    private mutating func take(at now: ContinuousClock.Instant, interval: Duration) -> Bool {
        let available = available(at: now, interval: interval)
        guard available >= 1 else { return false }
        tokens = available - 1
        refilled = now
        return true
    }
}
