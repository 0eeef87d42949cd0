import Testing

@testable import KappaPostgres

/// The runner's decisions, without a database: each test plays the outcomes of the actions the
/// machine asks for, moving its own clock.
@Suite struct FollowStateMachineTests {
    /// A clock the test moves by hand.
    struct TestClock {
        private(set) var now = ContinuousClock.now
        mutating func advance(by duration: Duration) { now += duration }
    }

    static let configuration = FollowStateMachine.Configuration(
        batchSize: 100, leaseDuration: .seconds(9), idlePollInterval: .milliseconds(500), liveCoalescing: .milliseconds(10))

    static func machine(
        building: Bool = false, promotionDue: Bool = false, untilCaughtUp: Bool = false,
        clock: TestClock
    ) -> FollowStateMachine {
        var configuration = Self.configuration
        configuration.untilCaughtUp = untilCaughtUp
        return FollowStateMachine(configuration, building: building, promotionDue: promotionDue, now: clock.now)
    }

    /// A rebuild's machine (`untilCaughtUp`) that finished building at its first horizon and asks to promote.
    static func caughtUpRebuild(clock: TestClock) -> FollowStateMachine {
        var machine = Self.machine(building: true, untilCaughtUp: true, clock: clock)
        _ = machine.start()
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .finishBuilding)
        #expect(machine.finishedBuilding(now: clock.now) == .promote)
        return machine
    }

    /// A promotion refused because the version lags: the machine renews as live and waits for more, not stopping.
    static func refusedAsBehind(_ machine: inout FollowStateMachine, clock: TestClock) {
        #expect(machine.promotionTried(.behind, now: clock.now) == .renew(.live))
        #expect(machine.renewed(now: clock.now) == .wait(.milliseconds(500)))
        _ = machine.rested()
    }

    /// After a retry's wait the promotion is tried again and `refused` with no follow-on left: it stops.
    static func retriedThenStopped(_ machine: inout FollowStateMachine, clock: inout TestClock, refused: FollowStateMachine.Promotion) {
        clock.advance(by: FollowStateMachine.promotionRetry)
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .promote)
        #expect(machine.promotionTried(refused, now: clock.now) == .renew(.live))
        #expect(machine.renewed(now: clock.now) == .stop)
    }

    @Test func aFullPageIsAppliedWithTheNextReadBesideItAndTheLoopReadsOn() {
        let clock = TestClock()
        var machine = Self.machine(clock: clock)
        #expect(machine.start() == .read(refined: false))
        #expect(machine.pageRead(events: 100, heldBack: false, refined: false, now: clock.now) == .apply(state: .catchingUp, readAhead: true))
        // No horizon work after a full page, however long ago the lease was renewed.
        #expect(machine.batchApplied(now: clock.now) == .read(refined: false))
    }

    @Test func aShortPageIsAppliedLiveWithoutReadingAhead() {
        let clock = TestClock()
        var machine = Self.machine(clock: clock)
        _ = machine.start()
        #expect(machine.pageRead(events: 3, heldBack: false, refined: false, now: clock.now) == .apply(state: .live, readAhead: false))
        #expect(machine.batchApplied(now: clock.now) == .read(refined: false))
    }

    @Test func anEmptyReadRenewsTheLeaseAsLiveOnceThenWaitsTheIdleInterval() {
        var clock = TestClock()
        var machine = Self.machine(clock: clock)
        _ = machine.start()
        // The first empty read switches the state from catching up to live.
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .renew(.live))
        #expect(machine.renewed(now: clock.now) == .wait(.milliseconds(500)))
        #expect(machine.rested() == .read(refined: false))
        clock.advance(by: .seconds(3))
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .wait(.milliseconds(500)))
        // A third of the lease since the last renewal: renewed again.
        clock.advance(by: .milliseconds(1))
        _ = machine.rested()
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .renew(.live))
    }

    @Test func aBatchCountsAsARenewal() {
        var clock = TestClock()
        var machine = Self.machine(clock: clock)
        _ = machine.start()
        _ = machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now)
        _ = machine.renewed(now: clock.now)
        _ = machine.rested()
        clock.advance(by: .seconds(2))
        _ = machine.pageRead(events: 1, heldBack: false, refined: false, now: clock.now)
        #expect(machine.batchApplied(now: clock.now) == .read(refined: false))
        clock.advance(by: .seconds(2))
        // Four seconds since the renewal, two since the batch's checkpoint: not due.
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .wait(.milliseconds(500)))
    }

    @Test func heldBackReadsRecheckFromOneMillisecondDoublingThenLookPastTheHorizon() {
        var clock = TestClock()
        var machine = Self.machine(clock: clock)
        _ = machine.start()
        _ = machine.pageRead(events: 0, heldBack: true, refined: false, now: clock.now)
        var waits: [Duration] = []
        var action = machine.renewed(now: clock.now)
        var reads: [FollowStateMachine.Action] = []
        for _ in 0..<9 {
            guard case .wait(let timeout) = action else {
                Issue.record("expected a wait, got \(action)")
                return
            }
            waits.append(timeout)
            clock.advance(by: timeout)
            let read = machine.rested()
            reads.append(read)
            guard case .read(let refined) = read else { return }
            action = machine.pageRead(events: 0, heldBack: true, refined: refined, now: clock.now)
        }
        #expect(waits.map(\.wholeMilliseconds) == [1, 2, 4, 8, 16, 32, 64, 100, 100])
        // Refined once the rechecks of this hold-up have waited 100 ms in all (1+2+…+64 = 127).
        #expect(reads.map { $0 == .read(refined: true) } == [false, false, false, false, false, false, true, true, true])
        // Progress ends the hold-up: the next wait is the idle interval, the next read cheap.
        #expect(machine.rested() == .read(refined: true))
        _ = machine.pageRead(events: 2, heldBack: false, refined: true, now: clock.now)
        #expect(machine.batchApplied(now: clock.now) == .read(refined: false))
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .wait(.milliseconds(500)))
    }

    @Test func aBuildingVersionLooksPastAHeldBackHorizonBeforeItFinishes() {
        let clock = TestClock()
        var machine = Self.machine(building: true, clock: clock)
        _ = machine.start()
        // Held back at the cheap horizon: not caught up yet as far as it can tell.
        #expect(machine.pageRead(events: 0, heldBack: true, refined: false, now: clock.now) == .read(refined: true))
        #expect(machine.pageRead(events: 0, heldBack: true, refined: true, now: clock.now) == .finishBuilding)
    }

    @Test func aBuildingVersionFinishesAtItsFirstHorizonThenIsPromoted() {
        let clock = TestClock()
        var machine = Self.machine(building: true, clock: clock)
        _ = machine.start()
        _ = machine.pageRead(events: 5, heldBack: false, refined: false, now: clock.now)
        #expect(machine.batchApplied(now: clock.now) == .finishBuilding)
        #expect(machine.finishedBuilding(now: clock.now) == .promote)
        #expect(!machine.building)
        #expect(machine.promotionTried(.settled, now: clock.now) == .read(refined: false))
        #expect(!machine.promotionDue)
        // Promoted: later horizons do nothing more (the batch was live, its checkpoint a renewal).
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .wait(.milliseconds(500)))
    }

    @Test func aPromotionNotPossibleYetIsTriedAgainAtAHorizonAtLeast100MillisecondsLater() {
        var clock = TestClock()
        var machine = Self.machine(promotionDue: true, clock: clock)
        _ = machine.start()
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .promote)
        #expect(machine.promotionTried(.behind, now: clock.now) == .renew(.live))
        _ = machine.renewed(now: clock.now)
        _ = machine.rested()
        clock.advance(by: .milliseconds(99))
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .wait(.milliseconds(500)))
        _ = machine.rested()
        clock.advance(by: .milliseconds(1))
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .promote)
    }

    @Test func untilCaughtUpStopsAtTheFirstHorizonRenewedAsLive() {
        let clock = TestClock()
        var machine = Self.machine(building: true, untilCaughtUp: true, clock: clock)
        _ = machine.start()
        _ = machine.pageRead(events: 100, heldBack: false, refined: false, now: clock.now)
        #expect(machine.batchApplied(now: clock.now) == .read(refined: false))
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .finishBuilding)
        #expect(machine.finishedBuilding(now: clock.now) == .promote)
        #expect(machine.promotionTried(.settled, now: clock.now) == .renew(.live))
        #expect(machine.renewed(now: clock.now) == .stop)
    }

    @Test func untilCaughtUpFollowsOnWhileItsPromotionLagsThenStopsOncePromoted() {
        var clock = TestClock()
        var machine = Self.caughtUpRebuild(clock: clock)
        // The log ran ahead: not stopped, but live and waiting for more.
        Self.refusedAsBehind(&machine, clock: clock)
        // Not tried again before 100 ms, and not stopped either.
        #expect(machine.pageRead(events: 2, heldBack: false, refined: false, now: clock.now) == .apply(state: .live, readAhead: false))
        #expect(machine.batchApplied(now: clock.now) == .read(refined: false))
        clock.advance(by: FollowStateMachine.promotionRetry)
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .promote)
        #expect(machine.promotionTried(.settled, now: clock.now) == .renew(.live))
        #expect(machine.renewed(now: clock.now) == .stop)
    }

    @Test func untilCaughtUpFollowsOnForItsPromotionAtMost30Seconds() {
        var clock = TestClock()
        var machine = Self.caughtUpRebuild(clock: clock)
        Self.refusedAsBehind(&machine, clock: clock)
        clock.advance(by: FollowStateMachine.promotionFollowOn - .milliseconds(1))
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .promote)
        Self.refusedAsBehind(&machine, clock: clock)
        Self.retriedThenStopped(&machine, clock: &clock, refused: .behind)
    }

    @Test func untilCaughtUpDoesNotWaitForALowerVersionsPromotion() {
        let clock = TestClock()
        var machine = Self.caughtUpRebuild(clock: clock)
        #expect(machine.promotionTried(.notByFollowing, now: clock.now) == .renew(.live))
        #expect(machine.renewed(now: clock.now) == .stop)
        #expect(machine.promotionDue)
    }

    /// A machine of a rebuild's retry takes over the follow-on's end its predecessor set: it does
    /// not start 30 s over.
    @Test func untilCaughtUpKeepsTheFollowOnEndOfAnEarlierMachine() {
        let clock = TestClock()
        var configuration = Self.configuration
        configuration.untilCaughtUp = true
        configuration.followOnUntil = clock.now - .milliseconds(1)
        var machine = FollowStateMachine(configuration, building: false, promotionDue: true, now: clock.now)
        _ = machine.start()
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .promote)
        #expect(machine.promotionTried(.behind, now: clock.now) == .renew(.live))
        #expect(machine.renewed(now: clock.now) == .stop)
        #expect(machine.followOnUntil == configuration.followOnUntil)
    }

    /// Lagging first, then waiting for a lower version: it stops at that refusal.
    @Test func untilCaughtUpStopsWhenItsLaggingPromotionTurnsToWaitForALowerVersion() {
        var clock = TestClock()
        var machine = Self.machine(promotionDue: true, untilCaughtUp: true, clock: clock)
        _ = machine.start()
        #expect(machine.pageRead(events: 0, heldBack: false, refined: false, now: clock.now) == .promote)
        Self.refusedAsBehind(&machine, clock: clock)
        Self.retriedThenStopped(&machine, clock: &clock, refused: .notByFollowing)
    }

    @Test func aShortBatchHeldBackIsLookedAtAgainPastTheHorizonBeforeFinishing() {
        let clock = TestClock()
        var machine = Self.machine(building: true, clock: clock)
        _ = machine.start()
        _ = machine.pageRead(events: 5, heldBack: true, refined: false, now: clock.now)
        #expect(machine.batchApplied(now: clock.now) == .read(refined: true))
        _ = machine.pageRead(events: 5, heldBack: true, refined: true, now: clock.now)
        #expect(machine.batchApplied(now: clock.now) == .finishBuilding)
    }

    @Test func fastShortBatchesPauseToCoalesceAndSlowOnesDoNot() {
        var clock = TestClock()
        var machine = Self.machine(clock: clock)
        _ = machine.start()
        var actions: [FollowStateMachine.Action] = []
        // 50 events every 5 ms: 10,000 a second.
        for _ in 0..<8 {
            _ = machine.pageRead(events: 50, heldBack: false, refined: false, now: clock.now)
            let next = machine.batchApplied(now: clock.now)
            actions.append(next)
            if next != .read(refined: false) { _ = machine.rested() }
            clock.advance(by: .milliseconds(5))
        }
        #expect(actions.first == .read(refined: false))
        #expect(actions.last == .pause(.milliseconds(10)))
        // One event every 5 ms: 200 a second, never paused.
        var slow = Self.machine(clock: clock)
        _ = slow.start()
        for _ in 0..<20 {
            _ = slow.pageRead(events: 1, heldBack: false, refined: false, now: clock.now)
            #expect(slow.batchApplied(now: clock.now) == .read(refined: false))
            clock.advance(by: .milliseconds(5))
        }
    }
}
