import Kappa
import PostgresNIO

/// An open transaction that holds the log's horizon back: one that may append to this log (its
/// database, a role with `INSERT` on `events`), so followers cannot pass its id until it ends.
public struct HorizonHolder: Sendable, Hashable {
    /// Its transaction id.
    public var transactionID: UInt64
    /// The backend's process id; `nil` for a prepared (two-phase) transaction.
    public var pid: Int32?
    /// The database it runs in.
    public var database: String?
    /// The role it runs as (a prepared transaction's owner).
    public var role: String?
    /// How long it has been open (prepared, for a prepared transaction), in seconds; `nil` where the
    /// log's owner may not see it (`pg_read_all_stats`).
    public var ageSeconds: Double?
    /// A prepared transaction's global id (`PREPARE TRANSACTION 'gid'`), to end it with
    /// `COMMIT PREPARED` or `ROLLBACK PREPARED`.
    public var preparedGID: String?
}

extension PostgresEventStore {
    /// What holds the log's horizon back now, oldest first: open transactions that may still append
    /// to it. Transactions of other databases, of roles that cannot append, of background processes,
    /// and prepared transactions of those, hold nothing back and are not listed.
    public func horizonHolders() async throws -> [HorizonHolder] {
        // A read: sent again when the pool hands it a connection that has just closed.
        try await rows(queries.horizonHolders(), resending: true) { row in
            let (transactionID, pid, database, role, age, gid) = try row.decode((Int64, Int32?, String?, String?, Double?, String?).self)
            return HorizonHolder(transactionID: UInt64(transactionID), pid: pid, database: database, role: role, ageSeconds: age, preparedGID: gid)
        }
    }
}
