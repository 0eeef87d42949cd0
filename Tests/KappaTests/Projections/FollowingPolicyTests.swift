import Foundation
import Kappa
import Testing

@testable import KappaPostgres

/// The pure rules of live following: when to look again at a held-back horizon, and when to pause
/// so that batches carry more events.
@Suite("Following policies")
struct FollowingPolicyTests {
    @Test func aHeldBackHorizonIsLookedAtAgainSoonBackingOffTo100ms() {
        var recheck = HorizonRecheck()
        let idle = Duration.milliseconds(500)
        #expect(recheck.timeout(heldBack: false, idle: idle) == idle)
        let waits = (0..<9).map { _ in recheck.timeout(heldBack: true, idle: idle) }
        #expect(waits == [1, 2, 4, 8, 16, 32, 64, 100, 100].map { Duration.milliseconds($0) })
        // Released: the idle interval again; held back anew: from 1 ms again.
        #expect(recheck.timeout(heldBack: false, idle: idle) == idle)
        #expect(recheck.timeout(heldBack: true, idle: idle) == .milliseconds(1))
        // Events read in between: the next hold-up starts again at 1 ms too.
        _ = recheck.timeout(heldBack: true, idle: idle)
        recheck.progressed()
        #expect(recheck.timeout(heldBack: true, idle: idle) == .milliseconds(1))
        // Never longer than the idle interval.
        var short = HorizonRecheck()
        #expect((0..<6).map { _ in short.timeout(heldBack: true, idle: .milliseconds(3)) }.allSatisfy { $0 <= .milliseconds(3) })
    }

    /// The refined horizon (which looks at every open transaction) is read only once a hold-up has
    /// lasted 100 ms of rechecks, whatever the idle interval, and not after progress or a release.
    @Test func theRefinedHorizonIsReadOnlyAfterAHoldUpOf100ms() {
        var recheck = HorizonRecheck()
        var refines: [Bool] = []
        for _ in 0..<9 {
            refines.append(recheck.refine)
            _ = recheck.timeout(heldBack: true, idle: .milliseconds(500))
        }
        // Waited 1, 3, 7, 15, 31, 63, 127 ms before the 8th read: it is the first refined one.
        #expect(refines == [false, false, false, false, false, false, false, true, true])
        recheck.progressed()
        #expect(!recheck.refine)
        var fast = HorizonRecheck()
        for _ in 0..<40 { _ = fast.timeout(heldBack: true, idle: .milliseconds(3)) }
        #expect(fast.refine, "a short idle interval reaches it too")
        _ = fast.timeout(heldBack: false, idle: .milliseconds(3))
        #expect(!fast.refine)
    }

    /// A batch's events that a projection handles: in log order, whatever runs of other types they
    /// are mixed with; all of them, the same array, when it handles them all.
    @Test func theRelevantEventsOfABatchKeepTheirOrder() throws {
        let types = ["A", "B", "C", "A", "C", "C", "B"]
        let events = try types.enumerated().map { i, type in
            RecordedEvent(
                id: UUID(), streamID: try StreamID("s-\(i)"), streamVersion: 1,
                position: LogPosition(transactionID: 1, globalPosition: Int64(i + 1)), eventType: type, schemaVersion: 1,
                payload: Data("{}".utf8), metadata: EventMetadata(), recordedAt: Date(timeIntervalSince1970: 0))
        }
        let positions = { (kept: [RecordedEvent]) in kept.map(\.position.globalPosition) }
        #expect(positions(ProjectionRunner.relevant(events, types: ["A", "C"])) == [1, 3, 4, 5, 6])
        #expect(positions(ProjectionRunner.relevant(events, types: ["B"])) == [2, 7])
        #expect(ProjectionRunner.relevant(events, types: ["Z"]).isEmpty)
        #expect(ProjectionRunner.relevant(events, types: ["A", "B", "C"]) == events)
        #expect(ProjectionRunner.relevant(events, types: nil) == events)
        #expect(ProjectionRunner.relevant([], types: ["A"]).isEmpty)
    }

    @Test func onlySustainedFastAppendsPause() {
        let pause = Duration.milliseconds(2)
        let start = ContinuousClock.now
        var quiet = LiveCoalescing()
        // 1,000 appends/s: 4 events every 4 ms never pause.
        #expect((0..<50).compactMap { quiet.pause(after: 4, at: start + .milliseconds(4 * $0), configured: pause) }.isEmpty)
        // Nor do uneven batches at that rate: 1 event 0.3 ms after the last batch, then 7 events 7.7 ms
        // after it (each batch's own rate averaged would be (3,333 + 909) / 2 = 2,121 a second).
        var uneven = LiveCoalescing()
        var at = start
        let unevenPauses = (0..<50).compactMap { i -> Duration? in
            at += i % 2 == 0 ? .microseconds(300) : .microseconds(7_700)
            return uneven.pause(after: i % 2 == 0 ? 1 : 7, at: at, configured: pause)
        }
        #expect(unevenPauses.isEmpty)
        // Nor does the batch after a 30 ms stall, which holds the 30 events appended meanwhile.
        #expect(quiet.pause(after: 30, at: start + .milliseconds(196 + 30), configured: pause) == nil)
        // 5,000 appends/s (10 events every 2 ms) does, after a few batches.
        var busy = LiveCoalescing()
        let pauses = (0..<20).map { busy.pause(after: 10, at: start + .milliseconds(2 * $0), configured: pause) }
        #expect(pauses[0] == nil && pauses[1] == nil)
        #expect(pauses.last! == pause)
        // Turned off.
        var off = LiveCoalescing()
        #expect((0..<20).compactMap { off.pause(after: 50, at: start + .milliseconds($0), configured: .zero) }.isEmpty)
    }
}
