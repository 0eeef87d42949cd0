/// When the ``LogNotifier`` may send its next notification, and whether appends wait for one.
///
/// A token bucket: one notification's worth of allowance accrues per interval, up to ``burst``. A
/// notification is sent by an append in its own transaction (``claim(at:interval:listenerCheckInterval:)``),
/// or by the notifier's loop for appends that carried none (``claimForLoop(at:interval:)``). At a
/// steady rate of one append per interval, every append carries one (the burst absorbs the jitter:
/// a strict minimum gap would leave every append a little early, each then waiting for the loop).
struct NotificationSchedule: Sendable {
    /// Notifications that may be sent at once after a quiet spell.
    static let burst = 2.0

    /// Whether a follower of another process listened at the last look.
    var othersListen = false
    /// When the notifier last looked for listeners.
    var checked: ContinuousClock.Instant?
    /// Whether an append committed since the last claim, which no notification will follow.
    var uncovered = false
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
        guard othersListen, take(at: now, interval: interval) else { return (false, stale) }
        uncovered = false
        return (true, stale)
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
