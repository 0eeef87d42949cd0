import Foundation
import Kappa
import KappaTesting
import Testing

@testable import KappaPostgres

/// The read-your-writes waits on this runtime's own commits, and the deadlines that end them.
@Suite("Checkpoint waiters and deadlines")
struct CheckpointWaitersTests {
    let key = LeaseKey(name: "carts", version: 1)
    func at(_ position: Int64) -> LogPosition { LogPosition(transactionID: UInt64(position), globalPosition: position) }

    @Test func aWaitEndsWithTheCommitThatPassesItsPositionAndNoEarlier() async throws {
        let waiters = CheckpointWaiters(deadlines: Deadlines())
        let ended = Locked(false)
        let wait = Task {
            await waiters.wait(for: key, toPass: at(10), until: .now + .seconds(60)) { false }
            ended.withLock { $0 = true }
        }
        try await eventually("the wait is registered") { waiters.count == 1 }
        waiters.committed(key, at: at(9))
        waiters.committed(LeaseKey(name: "carts", version: 2), at: at(20))
        try await Task.sleep(for: .milliseconds(50))
        #expect(!ended.withLock { $0 }, "a commit before the position, or of another version, does not end it")
        waiters.committed(key, at: at(10))
        await wait.value
        #expect(ended.withLock { $0 })
        #expect(waiters.count == 0)
    }

    @Test func aWaitEndsAtItsDeadlineOnALeaseChangeOrWhenCancelled() async throws {
        let deadlines = Deadlines(tick: .milliseconds(5))
        let waiters = CheckpointWaiters(deadlines: deadlines)
        let clock = ContinuousClock()
        // Far below the 60 s the waits below would otherwise take, far above a tick: the suites run
        // in parallel on 2 cores, and a 100 ms wait was seen to take 2.5 s while CPU-bound tests ran.
        let late = Duration.seconds(15)
        let waited = await clock.measure {
            await waiters.wait(for: key, toPass: at(10), until: .now + .milliseconds(100)) { false }
        }
        #expect(waited >= .milliseconds(100) && waited < late, "\(waited)")

        let woken = Task { await waiters.wait(for: key, toPass: at(10), until: .now + .seconds(60)) { false } }
        try await eventually("the wait is registered") { waiters.count == 1 }
        waiters.wake(key)
        await woken.value

        let cancelled = Task { await waiters.wait(for: key, toPass: at(10), until: .now + .seconds(60)) { false } }
        let elapsed = await clock.measure {
            cancelled.cancel()
            await cancelled.value
        }
        #expect(elapsed < late)
        #expect(waiters.count == 0)
        // A wait whose position was passed before it registered does not wait.
        let passed = await clock.measure { await waiters.wait(for: key, toPass: at(10), until: .now + .seconds(60)) { true } }
        #expect(passed < late)
        // Many waits ending by their deadlines or by commits racing them leave no bookkeeping behind.
        let shared = key, position = at(10)
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask { await waiters.wait(for: shared, toPass: position, until: .now + .milliseconds(Int64(i % 20))) { false } }
            }
            group.addTask {
                let end = ContinuousClock.now + .milliseconds(40)
                while ContinuousClock.now < end {
                    waiters.committed(shared, at: position)
                    await Task.yield()
                }
            }
        }
        #expect(waiters.isIdle)
    }

    /// A live runner's pause to coalesce lasts its time while nobody waits; a read-your-writes wait
    /// on the same projection version ends it, or skips it while the wait is open; so does a stop.
    @Test func aCoalescingPauseGivesWayToAReaderWaitingAndToAStop() async throws {
        let waiters = CheckpointWaiters(deadlines: Deadlines(tick: .milliseconds(5)))
        let clock = ContinuousClock()
        let late = Duration.seconds(15) // far below the 60 s pauses below, if they were not ended
        let began = Locked(0)
        let quiet = await clock.measure {
            await waiters.pause(key, for: .milliseconds(50), unless: { false }, began: { began.withLock { $0 += 1 } })
        }
        #expect(quiet >= .milliseconds(50) && quiet < late, "\(quiet)")
        #expect(began.withLock { $0 } == 1)

        // A wait that begins during a pause ends it.
        let pausing = Task { await clock.measure { await waiters.pause(key, for: .seconds(60)) { false } } }
        try await eventually("the pause has begun") { waiters.pausing.withLock { $0[key] != nil } }
        let reader = Task { await waiters.wait(for: key, toPass: at(10), until: .now + .seconds(60)) { false } }
        let paused = await pausing.value
        #expect(paused < late, "\(paused)")
        // While it is open, a pause does not begin; a wait on another version does not count.
        let skipped = await clock.measure {
            await waiters.pause(key, for: .seconds(60), unless: { false }, began: { began.withLock { $0 += 1 } })
        }
        #expect(skipped < late, "\(skipped)")
        #expect(began.withLock { $0 } == 1, "a skipped pause does not count as begun")
        let other = await clock.measure { await waiters.pause(LeaseKey(name: "carts", version: 2), for: .milliseconds(50)) { false } }
        #expect(other >= .milliseconds(50), "\(other)")
        waiters.committed(key, at: at(10))
        await reader.value

        // A stop ends a pause, and a pause does not begin once stopping.
        let stopping = Locked(false)
        let stopped = Task { await clock.measure { await waiters.pause(key, for: .seconds(60)) { stopping.withLock { $0 } } } }
        try await eventually("the pause has begun") { waiters.pausing.withLock { $0[key] != nil } }
        stopping.withLock { $0 = true }
        waiters.endPauses()
        let untilStopped = await stopped.value
        #expect(untilStopped < late, "\(untilStopped)")
        let afterStop = await clock.measure { await waiters.pause(key, for: .seconds(60)) { stopping.withLock { $0 } } }
        #expect(afterStop < late, "\(afterStop)")
        #expect(waiters.pausing.withLock { $0.isEmpty })
        #expect(waiters.isIdle)
    }

    @Test func deadlinesRunOnceInOrderAndCanBeCancelled() async throws {
        let deadlines = Deadlines(tick: .milliseconds(5))
        let fired = Locked<[Int]>([])
        let start = ContinuousClock.now
        deadlines.at(start + .milliseconds(60)) { fired.withLock { $0.append(2) } }
        deadlines.at(start + .milliseconds(20)) { fired.withLock { $0.append(1) } }
        let cancelled = deadlines.at(start + .milliseconds(40)) { fired.withLock { $0.append(99) } }
        deadlines.cancel(cancelled)
        try await eventually("both deadlines fired") { fired.withLock { $0.count } == 2 }
        try await Task.sleep(for: .milliseconds(50))
        #expect(fired.withLock { $0 } == [1, 2])
    }
}
