import Kappa

/// One partition of the streams for a parallel rebuild: a contiguous range of `hashtext(stream_id)`,
/// the leading key of the log's `events_stream_hash_idx` (Migrations/log/0008). A partition's events
/// are one range scan of that index, so a partition reads its own streams' events and no others.
package struct StreamHashRange: Sendable, Hashable {
    /// The range's first and last hash, both included.
    package let lowest: Int32
    package let highest: Int32

    /// Partition `partition` of `count` equal ranges covering every 32-bit hash.
    package init(partition: Int, of count: Int) {
        precondition(count > 0 && (0..<count).contains(partition), "partition \(partition) of \(count)")
        let span = Int64(UInt32.max) + 1
        func start(_ index: Int) -> Int64 { Int64(Int32.min) + span * Int64(index) / Int64(count) }
        lowest = Int32(start(partition))
        highest = Int32(start(partition + 1) - 1)
    }
}
