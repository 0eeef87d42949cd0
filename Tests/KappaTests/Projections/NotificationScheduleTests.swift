import Testing

@testable import KappaPostgres

/// Who sends the log's next notification: an append in its own transaction while the appends'
/// allowance (one per interval on average, two at once) has one; the notifier's loop, from an
/// allowance of its own, for appends that carried none.
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

    /// Whether an append at `ms` claims the notification; one that does commits at once (`inFlight`:
    /// it is still being sent).
    func claim(_ schedule: inout NotificationSchedule, atMs ms: Double, inFlight: Bool = false) -> Bool {
        let now = start + .microseconds(Int64(ms * 1000))
        let claimed = schedule.claim(at: now, interval: interval, listenerCheckInterval: look).claimed
        if claimed && !inFlight { schedule.carried(took: .zero, at: now) }
        return claimed
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
        // The loop, for an append that carried none: half an interval after the last notification.
        #expect(schedule.nextDue(at: start + .milliseconds(5), interval: interval) == start + .milliseconds(7.5))
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
        // An append past the appends' allowance: the loop sends half an interval after the last notification.
        #expect(!claim(&schedule, atMs: 1))
        schedule.uncovered = true
        #expect(schedule.nextDue(at: start + .milliseconds(1), interval: interval) == start + .milliseconds(2.5))
        let early = schedule.claimForLoop(at: start + .milliseconds(2.4), interval: interval)
        let due = schedule.claimForLoop(at: start + .milliseconds(2.5), interval: interval)
        #expect(!early && due)
        #expect(!schedule.uncovered)
        // Then at most one per interval from its own allowance.
        schedule.uncovered = true
        #expect(schedule.nextDue(at: start + .milliseconds(3), interval: interval) == start + .milliseconds(7.5))
        // The loop spent none of the appends' allowance: the next append at the interval carries.
        #expect(claim(&schedule, atMs: 5))
        #expect(!schedule.uncovered)
    }

    /// Three appends at once, then one per interval, each a millisecond after the interval's start:
    /// the third finds no allowance and the loop notifies for it; the appends after it carry their
    /// notifications again. (Had the loop spent the appends' allowance, it would take each token as
    /// it accrued, and every later append, a millisecond behind, would wait for the loop.)
    @Test func aNotificationTheLoopSentLeavesTheNextAppendsCarrying() {
        var schedule = listened()
        var carried: [Int] = []
        for n in 0..<100 {
            let at = n < 3 ? 0 : Double(n - 2) * 5 + 1
            if claim(&schedule, atMs: at) {
                carried.append(n)
                continue
            }
            schedule.uncovered = true
            let due = schedule.nextDue(at: start + .microseconds(Int64(at * 1000)), interval: interval)
            let looped = schedule.claimForLoop(at: due, interval: interval)
            #expect(looped, "append \(n)")
        }
        #expect(!carried.contains(2))
        #expect(Set(carried).isSuperset(of: 3..<100), "\(Set(3..<100).subtracting(carried).sorted())")
    }

    /// Appends every millisecond, five to an interval: one in five carries its notification, the loop
    /// notifies for the others half an interval after the last; none waits more than half an interval
    /// (and the commit's own wait) for one, and at most two go out an interval.
    @Test func aFastStreamIsNotifiedAboutEveryHalfInterval() {
        var schedule = listened()
        var sent: [Double] = []
        var waiting: [Double] = [] // appends committed without a notification yet
        var longestWait = 0.0
        for tick in 0..<10_000 { // 0.1 ms steps, 1 s
            let ms = Double(tick) / 10
            let now = start + .microseconds(Int64(tick) * 100)
            if tick % 10 == 0 {
                if claim(&schedule, atMs: ms) {
                    sent.append(ms)
                    longestWait = max(longestWait, waiting.map { ms - $0 }.max() ?? 0)
                    waiting = []
                    continue
                }
                schedule.uncovered = true
                waiting.append(ms)
            }
            if schedule.uncovered, schedule.nextDue(at: now, interval: interval) <= now, schedule.claimForLoop(at: now, interval: interval) {
                sent.append(ms)
                longestWait = max(longestWait, waiting.map { ms - $0 }.max() ?? 0)
                waiting = []
            }
        }
        #expect(longestWait <= 2.5, "an append waited \(longestWait) ms for a notification")
        #expect(sent.count <= 2 * 200 + 3)
        #expect(sent.count >= 380)
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
            schedule.carried(took: .zero, at: start)
            // Nor the loop's, right after.
            schedule.uncovered = true
            #expect(schedule.nextDue(at: start, interval: .zero) == start)
            let looped = schedule.claimForLoop(at: start, interval: .zero)
            #expect(looped)
        }
    }

    /// A notification claimed and not yet committed is not claimed again, whatever the allowance
    /// holds; given back, the appends it would have covered are the loop's.
    @Test func oneCarriedNotificationIsInFlightAtATime() {
        var schedule = listened()
        #expect(claim(&schedule, atMs: 0, inFlight: true))
        #expect(schedule.inFlight)
        #expect(!claim(&schedule, atMs: 0))
        schedule.carried(took: .milliseconds(1), at: start + .milliseconds(1))
        #expect(claim(&schedule, atMs: 1, inFlight: true))
        schedule.notCarried()
        #expect(!schedule.inFlight && schedule.uncovered)
        #expect(claim(&schedule, atMs: 6))
    }

    /// Appends every 0.2 ms while each commit carrying a notification takes 3 ms (slow flushes, the
    /// interval no limit): never two carried at once, so none queues behind another's lock; the loop
    /// notifies for the others.
    @Test func slowCarriedCommitsDoNotQueue() {
        var schedule = listened()
        var committing: Double? // when the carried append in flight commits
        var carried = 0
        for tick in 0..<5_000 { // 0.2 ms steps, 1 s
            let ms = Double(tick) / 5
            if let at = committing, at <= ms {
                schedule.carried(took: .milliseconds(3), at: start + .microseconds(Int64(at * 1000)))
                committing = nil
            }
            let claimed = schedule.claim(at: start + .microseconds(Int64(ms * 1000)), interval: .zero, listenerCheckInterval: look).claimed
            #expect(!claimed || committing == nil, "at \(ms) ms")
            if claimed {
                committing = ms + 3
                carried += 1
            }
        }
        #expect(carried >= 300 && carried <= 334)
    }

    /// Appends queued behind other processes' notifying commits: carrying pauses, the loop notifies.
    @Test func aSlowCarriedAppendPausesCarrying() {
        var schedule = listened()
        #expect(claim(&schedule, atMs: 0, inFlight: true))
        schedule.carried(took: .milliseconds(90), at: start + .milliseconds(10))
        #expect(claim(&schedule, atMs: 10, inFlight: true))
        schedule.carried(took: .milliseconds(110), at: start + .milliseconds(40))
        #expect(!claim(&schedule, atMs: 100))
        #expect(!claim(&schedule, atMs: 1_039))
        schedule.uncovered = true
        let looped = schedule.claimForLoop(at: start + .milliseconds(100), interval: interval)
        #expect(looped)
        #expect(claim(&schedule, atMs: 1_040))
    }
}
