import Kappa

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
