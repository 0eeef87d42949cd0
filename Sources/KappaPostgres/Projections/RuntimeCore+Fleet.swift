import Logging

extension RuntimeCore {
    /// Keeps this runtime a member of its fleet until it stops — its row renewed every third of the
    /// lease duration, with the versions `keys` returns — and the fleet's assignment current, after
    /// the renewal ``ProjectionRuntime/run()`` made before starting its runners. Does nothing with
    /// ``ProjectionRuntime/Configuration/balancesLeases`` off.
    func keepFleetMembership(keys: @escaping @Sendable () -> [LeaseKey]) async {
        guard fleet.enabled else { return }
        while true {
            await fleetPause(configuration.leaseDuration / 3)
            if isStopping || Task.isCancelled { return }
            await renewFleetMembership(keys: keys())
        }
    }

    /// A runtime that stops leaves the fleet at once, rather than when its membership expires.
    func leaveFleet() async {
        guard fleet.enabled else { return }
        do {
            _ = try await database.readModelRows(queries.leaveFleet(holder: instanceID), resending: true) { _ in () }
        } catch {
            logger.debug("could not leave the fleet; the membership expires by itself", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// Renews this runtime's membership once and computes the assignment from what the database says.
    func renewFleetMembership(keys: [LeaseKey]) async {
        guard fleet.enabled else { return }
        do {
            let rows = try await database.readModelRows(
                queries.joinFleet(holder: instanceID, owner: configuration.owner, keys: keys, milliseconds: configuration.leaseMilliseconds)
            ) { try ProjectionQueries.FleetRow($0) }
            var members = [FleetAssignment.Member(id: instanceID, keys: Set(keys))]
            var holders: [LeaseKey: String] = [:], dropped: Set<LeaseKey> = []
            for row in rows {
                switch row.kind {
                case .lease: for key in row.keys { holders[key] = row.holder }
                case .member: members.append(FleetAssignment.Member(id: row.holder, keys: Set(row.keys)))
                case .dropped: dropped.formUnion(row.keys)
                }
            }
            let previous = fleet.assignment
            let assignment = FleetAssignment(members: members, holders: holders, closed: dropped)
            fleet.update(assignment)
            if previous?.members.map(\.id) != assignment.members.map(\.id) {
                logger.info(
                    "the fleet changed",
                    metadata: [
                        "kappa.fleet_members": "\(assignment.members.count)",
                        "kappa.fleet_share": "\(assignment.load[instanceID] ?? 0)",
                    ])
            }
        } catch {
            logger.debug("could not renew the fleet membership", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// Whether nobody holds the lease on `key`.
    func leaseIsFree(_ table: LeaseTable, _ key: LeaseKey) async throws -> Bool {
        try await database.readModelRows(queries.leaseIsFree(table, key), resending: true) { try $0.decode(Bool.self) }.last ?? false
    }
}
