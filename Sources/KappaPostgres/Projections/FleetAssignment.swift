/// Which runtime of a fleet (the live runtimes sharing a runtime schema) should run each projection
/// version, computed alike by every member from the same snapshot: the members, the versions each
/// runs, and who holds each lease now. No I/O, so its decisions are unit-tested.
///
/// Each member gets about its fair share: with M versions that N members all run, at most ⌈M/N⌉.
/// A version stays with its current holder while that holder is within its share, so a member
/// joining or leaving moves only the versions it must; the rest go to the member that can run them
/// and has the fewest so far. A version only one member runs is always that member's.
struct FleetAssignment: Sendable, Equatable {
    /// A live runtime: its instance id (the `lease_holder` of its leases) and the versions it runs.
    struct Member: Sendable, Equatable {
        var id: String
        var keys: Set<LeaseKey>
    }

    /// The member that should hold each version some member runs.
    private(set) var preferred: [LeaseKey: String] = [:]
    /// How many versions each member should hold.
    private(set) var load: [String: Int] = [:]
    let members: [Member]

    /// - Parameters:
    ///   - holders: The current holder of each version whose lease is held.
    ///   - closed: Versions nobody is to run (dropped), whoever still has them registered.
    init(members: [Member], holders: [LeaseKey: String], closed: Set<LeaseKey> = []) {
        self.members = members.sorted { $0.id < $1.id }
        let keys = Set(members.flatMap(\.keys)).subtracting(closed).sorted { ($0.name, $0.version) < ($1.name, $1.version) }
        let running = self.members.filter { !$0.keys.subtracting(closed).isEmpty }
        guard !running.isEmpty else { return }
        // Shares of ⌊M/N⌋, and ⌈M/N⌉ for M mod N of the members.
        let base = keys.count / running.count
        var extra = keys.count % running.count
        for member in self.members { load[member.id] = 0 }
        func heldWithin(_ key: LeaseKey, limit: Int) -> String? {
            guard let holder = holders[key], preferred[key] == nil, load[holder, default: 0] < limit,
                self.members.contains(where: { $0.id == holder && $0.keys.contains(key) })
            else { return nil }
            return holder
        }
        // A version only one member runs is that member's, and counts in its share.
        for key in keys {
            let candidates = self.members.filter { $0.keys.contains(key) }
            if candidates.count == 1 { place(key, on: candidates[0].id) }
        }
        // Holders keep what is within their share: a member joining or leaving moves only what it must.
        for key in keys {
            if let holder = heldWithin(key, limit: base) { place(key, on: holder) }
        }
        for key in keys where extra > 0 {
            if let holder = heldWithin(key, limit: base + 1) {
                place(key, on: holder)
                extra -= 1
            }
        }
        // The rest: among the members that run it, the one with the fewest (the first by id on a tie).
        for key in keys where preferred[key] == nil {
            let candidate = self.members.filter { $0.keys.contains(key) }.min { (load[$0.id] ?? 0, $0.id) < (load[$1.id] ?? 0, $1.id) }
            if let candidate { place(key, on: candidate.id) }
        }
    }

    private mutating func place(_ key: LeaseKey, on member: String) {
        preferred[key] = member
        load[member, default: 0] += 1
    }

    /// Whether `member` is in the snapshot.
    func isMember(_ member: String) -> Bool { members.contains { $0.id == member } }
}
