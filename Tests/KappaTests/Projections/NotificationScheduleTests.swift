import Testing

@testable import KappaPostgres

/// Who sends the log's next notification: an append in its own transaction while the allowance
/// (one per interval on average, two at once) has one, the notifier's loop for appends that carried none.
@Suite("Notification schedule")
struct NotificationScheduleTests {
    let start = ContinuousClock.now
    let interval = Duration.milliseconds(5)
    let look = Duration.seconds(1)

    func listened() -> NotificationSchedule {
        var schedule = NotificationSchedule()
        schedule.othersListen = true
        schedule.checked = start
        return schedule
    }

    func claim(_ schedule: inout NotificationSchedule, atMs ms: Double) -> Bool {
        schedule.claim(at: start + .microseconds(Int64(ms * 1000)), interval: interval, listenerCheckInterval: look).claimed
    }

    @Test func anAppendCarriesNothingWhileNobodyElseListens() {
        var schedule = NotificationSchedule()
        let unknown = schedule.claim(at: start, interval: interval, listenerCheckInterval: look)
        #expect(!unknown.claimed && !unknown.stale)
        // A look more than `listenerCheckInterval` old: the loop should look again.
        schedule.checked = start
        let stale = schedule.claim(at: start + .seconds(2), interval: interval, listenerCheckInterval: look)
        #expect(!stale.claimed && stale.stale)
    }

    @Test func appendsCarryTwoAtOnceThenOnePerInterval() {
        var schedule = listened()
        #expect(claim(&schedule, atMs: 0))
        #expect(claim(&schedule, atMs: 0))
        #expect(!claim(&schedule, atMs: 4.9))
        #expect(claim(&schedule, atMs: 5))
        #expect(!claim(&schedule, atMs: 5))
        #expect(schedule.nextDue(at: start + .milliseconds(5), interval: interval) == start + .milliseconds(10))
    }

    /// One append per interval, each a little early or late: every one carries its notification.
    @Test func aSteadyRateOfOnePerIntervalCarriesEveryNotification() {
        var schedule = listened()
        let jitter = [0.0, -0.3, 0.4, -0.2, 0.0, 0.3, -0.4, 0.1, 0.2, -0.1]
        for n in 0..<200 {
            #expect(claim(&schedule, atMs: Double(n) * 5 + jitter[n % jitter.count]), "append \(n)")
        }
    }

    /// Appends far faster than the interval: over a second, no more notifications than one per interval and the burst.
    @Test func aFastRateIsHeldToOnePerInterval() {
        var schedule = listened()
        var claimed = 0
        for n in 0..<10_000 where claim(&schedule, atMs: Double(n) * 0.1) { claimed += 1 }
        #expect(claimed <= 200 + 2)
        #expect(claimed >= 199)
    }

    @Test func theLoopNotifiesForUncoveredAppendsOnceDue() {
        var schedule = listened()
        #expect(claim(&schedule, atMs: 0))
        #expect(claim(&schedule, atMs: 0))
        // Nothing committed without a notification: the loop has nothing to send.
        let nothingToSend = schedule.claimForLoop(at: start + .milliseconds(6), interval: interval)
        #expect(!nothingToSend)
        schedule.uncovered = true
        #expect(schedule.nextDue(at: start + .milliseconds(1), interval: interval) == start + .milliseconds(5))
        let early = schedule.claimForLoop(at: start + .milliseconds(4), interval: interval)
        let due = schedule.claimForLoop(at: start + .milliseconds(5), interval: interval)
        #expect(!early && due)
        #expect(!schedule.uncovered)
        // And the next append waits for the allowance the loop spent.
        #expect(!claim(&schedule, atMs: 9))
    }

    @Test func aClaimCoversTheAppendsCommittedBeforeIt() {
        var schedule = listened()
        schedule.uncovered = true
        #expect(claim(&schedule, atMs: 0))
        #expect(!schedule.uncovered)
        let covered = !schedule.claimForLoop(at: start + .seconds(1), interval: interval)
        #expect(covered)
    }

    @Test func aZeroIntervalNeverHoldsANotificationBack() {
        var schedule = listened()
        for _ in 0..<10 {
            let claimed = schedule.claim(at: start, interval: .zero, listenerCheckInterval: look).claimed
            #expect(claimed)
        }
    }

    /// Appends queued behind other processes' notifying commits: carrying pauses, the loop notifies.
    @Test func aSlowCarriedAppendPausesCarrying() {
        var schedule = listened()
        #expect(claim(&schedule, atMs: 0))
        schedule.carried(took: .milliseconds(90), at: start + .milliseconds(10))
        #expect(claim(&schedule, atMs: 10))
        schedule.carried(took: .milliseconds(110), at: start + .milliseconds(40))
        #expect(!claim(&schedule, atMs: 100))
        #expect(!claim(&schedule, atMs: 1_039))
        schedule.uncovered = true
        let looped = schedule.claimForLoop(at: start + .milliseconds(100), interval: interval)
        #expect(looped)
        #expect(claim(&schedule, atMs: 1_040))
    }
}
