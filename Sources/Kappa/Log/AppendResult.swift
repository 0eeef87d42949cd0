/// What an append wrote, or, for a repeated append, what the original append wrote.
public struct AppendResult: Hashable, Sendable {
    /// The stream's version after its last appended event.
    public var streamVersion: Int64
    /// Each appended event's place in the log, in the order given.
    public var positions: [LogPosition]
    /// True when every event id was already in the log from an identical earlier append,
    /// so nothing was written and the original positions are returned.
    public var wasAlreadyAppended: Bool

    /// The result of an append that left the stream at `streamVersion`, its events at `positions`.
    public init(streamVersion: Int64, positions: [LogPosition], wasAlreadyAppended: Bool = false) {
        self.streamVersion = streamVersion
        self.positions = positions
        self.wasAlreadyAppended = wasAlreadyAppended
    }

    /// The last appended event's position: wait for a projection to pass it to read your own write.
    public var lastPosition: LogPosition? { positions.max() }
}
