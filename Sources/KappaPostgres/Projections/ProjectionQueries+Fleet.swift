import PostgresNIO

extension ProjectionQueries {
    /// A row of ``joinFleet(holder:owner:keys:milliseconds:)``: another live member and the versions
    /// it runs, a held lease and its holder (one key), or a dropped version (one key, no holder).
    struct FleetRow: Sendable {
        enum Kind: String { case member, lease, dropped }
        var kind: Kind
        var holder: String
        var keys: [LeaseKey]

        init(_ row: PostgresRow) throws {
            let (kind, holder, names, versions) = try row.decode((String, String, [String], [Int32]).self)
            self.kind = Kind(rawValue: kind) ?? .dropped
            self.holder = holder
            keys = zip(names, versions).map { LeaseKey(name: $0, version: Int($1)) }
        }
    }

    /// Renews this runtime's membership with the versions it runs (for `milliseconds`), forgets
    /// members gone for an hour, and returns the other live members, the projection leases held now
    /// and the dropped versions. (The statement's snapshot does not see its own insert: this runtime is
    /// not among the rows.)
    func joinFleet(holder: String, owner: String, keys: [LeaseKey], milliseconds: Int64) -> PostgresQuery {
        """
        WITH renewed AS (
            INSERT INTO \(unescaped: members) (holder, owner, names, versions, expires_at)
            VALUES (\(holder), \(owner), \(keys.map(\.name)), \(keys.map { Int32($0.version) }),
                    clock_timestamp() + \(milliseconds) * interval '1 millisecond')
            ON CONFLICT (holder) DO UPDATE SET owner = excluded.owner, names = excluded.names, versions = excluded.versions,
                expires_at = excluded.expires_at),
        forgotten AS (DELETE FROM \(unescaped: members) WHERE expires_at < now() - interval '1 hour')
        SELECT 'member', holder, names, versions FROM \(unescaped: members) WHERE expires_at > now() AND holder <> \(holder)
        UNION ALL
        SELECT 'lease', lease_holder, ARRAY[name], ARRAY[version] FROM \(unescaped: projections)
        WHERE lease_owner IS NOT NULL AND lease_holder IS NOT NULL AND lease_expires_at > now()
        UNION ALL
        SELECT 'dropped', '', ARRAY[name], ARRAY[version] FROM \(unescaped: projections) WHERE lifecycle = 'dropped'
        """
    }

    /// A runtime that stops leaves the fleet at once rather than when its row expires.
    func leaveFleet(holder: String) -> PostgresQuery {
        "DELETE FROM \(unescaped: members) WHERE holder = \(holder)"
    }

    /// One row, `true` when nobody holds the lease on `key` (or its holder's lease expired).
    func leaseIsFree(_ table: LeaseTable, _ key: LeaseKey) -> PostgresQuery {
        """
        SELECT lease_owner IS NULL OR lease_expires_at < now() FROM \(unescaped: table.name(in: self))
        WHERE name = \(key.name) AND version = \(key.version)
        """
    }
}
