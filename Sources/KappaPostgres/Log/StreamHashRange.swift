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

/// Where a partition of a rebuild has got to: the last event it applied, or `nil` before the first.
/// Its events are read in the order (hash of the stream, log position), so the position alone does
/// not place it; the stream's hash, computed by the server, does.
package struct PartitionCheckpoint: Sendable, Hashable, CustomStringConvertible {
    package var stream: String?
    package var position: LogPosition

    package init(stream: String?, position: LogPosition) {
        self.stream = stream
        self.position = position
    }

    /// After `event`.
    package init(after event: RecordedEvent) {
        self.init(stream: event.streamID.rawValue, position: event.position)
    }

    package var description: String { stream.map { "\(position) in \($0)" } ?? "\(position)" }
}
