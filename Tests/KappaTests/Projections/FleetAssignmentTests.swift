import Testing

@testable import KappaPostgres

/// Who runs what in a fleet, without a database: fair shares, stickiness, and versions only one
/// runtime can run.
@Suite("Fleet assignment")
struct FleetAssignmentTests {
    let nine = Set((0..<9).map { LeaseKey(name: "p\($0)", version: 1) })

    func members(_ ids: String..., keys: Set<LeaseKey>) -> [FleetAssignment.Member] {
        ids.map { FleetAssignment.Member(id: $0, keys: keys) }
    }

    func counts(_ assignment: FleetAssignment) -> [String: Int] {
        assignment.preferred.values.reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }

    @Test func nineVersionsOverThreeRuntimesAreThreeEach() {
        let assignment = FleetAssignment(members: members("a", "b", "c", keys: nine), holders: [:])
        #expect(counts(assignment) == ["a": 3, "b": 3, "c": 3])
        #expect(Set(assignment.preferred.keys) == nine)
        // Every member computes the same, whatever order it lists the members in.
        #expect(FleetAssignment(members: members("c", "a", "b", keys: nine), holders: [:]) == assignment)
    }

    @Test func holdersKeepWhatIsWithinTheirShare() {
        let keys = nine.sorted { $0.name < $1.name }
        // `a` took all nine before the others joined: it keeps three, and only six move.
        let holders = Dictionary(uniqueKeysWithValues: keys.map { ($0, "a") })
        let assignment = FleetAssignment(members: members("a", "b", "c", keys: nine), holders: holders)
        #expect(counts(assignment) == ["a": 3, "b": 3, "c": 3])
        #expect(keys.prefix(3).allSatisfy { assignment.preferred[$0] == "a" })
        // A fourth joins a balanced three: each of the three gives up at most one, nobody more.
        let balanced = assignment.preferred
        let four = FleetAssignment(members: members("a", "b", "c", "d", keys: nine), holders: balanced)
        #expect(counts(four).values.sorted() == [2, 2, 2, 3])
        #expect(nine.filter { four.preferred[$0] != balanced[$0] }.count == 2, "only what the newcomer needs moves")
        // One leaves: its versions go to the others, the rest stay put.
        let two = FleetAssignment(members: members("a", "b", keys: nine), holders: balanced.filter { $0.value != "c" })
        #expect(counts(two).values.sorted() == [4, 5])
        #expect(nine.filter { balanced[$0] != "c" }.allSatisfy { two.preferred[$0] == balanced[$0] })
    }

    @Test func aVersionOnlyOneRuntimeRunsIsThatRuntimes() {
        let only = LeaseKey(name: "reports", version: 2)
        var all = members("a", "b", keys: nine)
        all.append(.init(id: "c", keys: nine.union([only])))
        let assignment = FleetAssignment(members: all, holders: [:])
        #expect(assignment.preferred[only] == "c")
        #expect(counts(assignment).values.reduce(0, +) == 10)
        // A runtime that runs none of the versions gets none.
        let idle = FleetAssignment(members: members("a", keys: nine) + [.init(id: "z", keys: [])], holders: [:])
        #expect(counts(idle) == ["a": 9])
    }

    /// A runtime that runs only some of the versions still gets its share: the versions only the
    /// other runs count in the other's share first.
    @Test func runtimesRunningDifferentSetsShareWhatTheyHaveInCommon() {
        let six = (0..<6).map { LeaseKey(name: "p\($0)", version: 1) }
        let all = [FleetAssignment.Member(id: "a", keys: Set(six.prefix(3))), .init(id: "b", keys: Set(six))]
        let assignment = FleetAssignment(members: all, holders: Dictionary(uniqueKeysWithValues: six.map { ($0, "b") }))
        #expect(counts(assignment) == ["a": 3, "b": 3])
        #expect(six.suffix(3).allSatisfy { assignment.preferred[$0] == "b" })
    }

    /// A dropped version that a runtime still has registered is nobody's, and counts in no share.
    @Test func droppedVersionsAreNobodys() {
        let dropped = Set(nine.sorted { $0.name < $1.name }.prefix(3))
        let assignment = FleetAssignment(members: members("a", "b", "c", keys: nine), holders: [:], closed: dropped)
        #expect(counts(assignment) == ["a": 2, "b": 2, "c": 2])
        #expect(dropped.allSatisfy { assignment.preferred[$0] == nil })
    }

    @Test func aRuntimeTakesAndHandsOverByTheAssignment() {
        let key = LeaseKey(name: "p0", version: 1), start = ContinuousClock.now
        let fleet = Fleet(member: "a", enabled: true, leaseDuration: .seconds(1))
        #expect(fleet.shouldTake(key) && !fleet.shouldHandOver(key), "before the first snapshot, as a lone runtime")
        fleet.update(FleetAssignment(members: members("a", "b", keys: [key]), holders: [key: "b"]))
        #expect(!fleet.shouldTake(key) && fleet.shouldHandOver(key, now: start))
        // Taken anyway (its assignee left it free): kept for five lease durations, then handed over.
        fleet.tookAnyway(key, now: start)
        #expect(!fleet.shouldHandOver(key, now: start + .seconds(4)))
        #expect(fleet.shouldTake(key), "and taken again while kept, after a lost lease")
        #expect(fleet.shouldHandOver(key, now: start + .seconds(6)))
        // Assigned to a runtime no longer in the snapshot: anyone takes it.
        fleet.update(FleetAssignment(members: members("a", keys: []), holders: [:]))
        #expect(fleet.shouldTake(key) && !fleet.shouldHandOver(key))
        let off = Fleet(member: "a", enabled: false, leaseDuration: .seconds(1))
        off.update(FleetAssignment(members: members("a", "b", keys: [key]), holders: [key: "b"]))
        #expect(off.shouldTake(key) && !off.shouldHandOver(key), "balancing off")
    }
}
