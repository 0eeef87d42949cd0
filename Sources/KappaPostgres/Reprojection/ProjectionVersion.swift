import Kappa
import PostgresNIO

/// One version of a projection, as the read-model database records it.
public struct ProjectionVersion: Sendable, Hashable {
    /// Where a version is in its life: building → caught up → active → retired → dropped.
    /// A rollback makes a retired version active again.
    public enum Lifecycle: String, Sendable, Hashable, CustomStringConvertible {
        /// Replaying the log (in bulk while far behind), not yet serving.
        case building
        /// Has reached the log's head once and follows it; can be promoted.
        case caughtUp = "caught_up"
        /// What the stable names point at.
        case active
        /// Was active; still follows the log, so it can be rolled back to, until dropped.
        case retired
        /// Its schema is gone; a rebuild brings it back.
        case dropped

        public var description: String { rawValue }
    }

    /// The projection's name.
    public var name: String
    /// The version number.
    public var version: Int
    /// Where the version is in its life.
    public var lifecycle: Lifecycle
    /// The runner's state: `rebuilding`, `catching_up`, `live`, `stopped` (no runner holds the lease)
    /// or `failed` — as ``ProjectionStatus/State`` reads it.
    public var state: ProjectionStatus.State
    /// The last event applied (during a bulk rebuild: where the rebuild started).
    public var checkpoint: LogPosition
    /// Events this version has applied so far.
    public var eventsApplied: Int64
    /// The runtime holding the version's lease, while the lease is current.
    public var leaseOwner: String?
    /// A bulk rebuild in progress: the position every partition is applying the log up to, and how many partitions.
    public var rebuildTarget: LogPosition?
    /// During a bulk rebuild: how many partitions of the streams it is rebuilt in; `nil` otherwise.
    public var rebuildPartitions: Int?

    /// A row of ``ProjectionQueries/versions(_:locking:)``.
    init(name: String, row: PostgresRow) throws {
        let (version, lifecycle, state, transaction, position, applied, owner, targetTransaction, targetPosition, partitions) = try row.decode(
            (Int32, String, String, Int64, Int64, Int64, String?, Int64?, Int64?, Int32?).self)
        self.name = name
        self.version = Int(version)
        self.lifecycle = Lifecycle(rawValue: lifecycle) ?? .building
        self.state = ProjectionStatus.State(rawValue: state) ?? .stopped
        self.checkpoint = LogPosition(transactionID: UInt64(transaction), globalPosition: position)
        self.eventsApplied = applied
        self.leaseOwner = owner
        if let targetTransaction, let targetPosition {
            self.rebuildTarget = LogPosition(transactionID: UInt64(targetTransaction), globalPosition: targetPosition)
        }
        self.rebuildPartitions = partitions.map(Int.init)
    }
}
