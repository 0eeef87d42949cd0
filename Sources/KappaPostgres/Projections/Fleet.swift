import Synchronization

/// This runtime's view of its fleet: the live runtimes sharing its runtime schema, and which of them
/// should run each projection version (``FleetAssignment``), refreshed every third of the lease
/// duration (``RuntimeCore/keepFleetMembership(keys:)``). Live runners ask it whether to take a
/// lease and whether to hand one over; with ``ProjectionRuntime/Configuration/balancesLeases`` off,
/// or before the first snapshot, every runner takes whatever lease it can, as a lone runtime does.
final class Fleet: Sendable {
    /// This runtime instance (the `lease_holder` of its leases).
    let member: String
    let enabled: Bool
    /// A version taken although assigned elsewhere (its assignee left it free a whole lease) is not
    /// handed over again for this long, so that runtimes whose snapshots differ do not pass it back and forth.
    let keepTakenAnyway: Duration

    private struct State {
        var assignment: FleetAssignment?
        var takenAnyway: [LeaseKey: ContinuousClock.Instant] = [:]
    }
    private let state = Mutex(State())

    init(member: String, enabled: Bool, leaseDuration: Duration) {
        self.member = member
        self.enabled = enabled
        self.keepTakenAnyway = leaseDuration * 5
    }

    func update(_ assignment: FleetAssignment) {
        state.withLock { $0.assignment = assignment }
    }

    var assignment: FleetAssignment? { state.withLock { $0.assignment } }

    /// Whether this runtime should try to take the lease on `key`: it is this runtime's, or no other
    /// live member is to run it.
    func shouldTake(_ key: LeaseKey) -> Bool {
        guard enabled else { return true }
        return state.withLock { state in
            guard let assignment = state.assignment, let preferred = assignment.preferred[key] else { return true }
            if let taken = state.takenAnyway[key], ContinuousClock.now - taken < keepTakenAnyway { return true }
            return preferred == member || !assignment.isMember(preferred)
        }
    }

    /// Whether this runtime, holding `key`, should give it up to the live member it is assigned to.
    func shouldHandOver(_ key: LeaseKey, now: ContinuousClock.Instant = .now) -> Bool {
        guard enabled else { return false }
        return state.withLock { state in
            guard let assignment = state.assignment, let preferred = assignment.preferred[key], preferred != member,
                assignment.isMember(preferred)
            else { return false }
            if let taken = state.takenAnyway[key], now - taken < keepTakenAnyway { return false }
            return true
        }
    }

    /// This runtime takes `key` although it is assigned to another member, which left it free.
    func tookAnyway(_ key: LeaseKey, now: ContinuousClock.Instant = .now) {
        state.withLock { $0.takenAnyway[key] = now }
    }
}
