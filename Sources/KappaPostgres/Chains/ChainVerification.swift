/// What a verification of the log's hash chains found
/// (``PostgresEventStore/verifyChains(stream:pageSize:progress:)``).
public struct ChainVerification: Sendable {
    /// At most this many breaks are kept in ``breaks``; ``breakCount`` counts them all.
    public static let keptBreaks = 100

    /// Events whose hashes were recomputed.
    public var eventsChecked: Int
    /// Streams those events belong to.
    public var streamsChecked: Int
    /// The events whose chains do not hold, in stream and version order: the first
    /// ``keptBreaks``. Each event is checked against its predecessor's stored hash, so one edit
    /// names one event, not every event after it.
    public var breaks: [ChainBreak]
    /// How many events' chains do not hold.
    public var breakCount: Int
    /// How long the verification took.
    public var elapsed: Duration

    /// The first event whose chain does not hold; `nil` when every chain holds.
    public var firstBreak: ChainBreak? { breaks.first }
    /// Whether every chain checked holds.
    public var isIntact: Bool { breakCount == 0 }

    /// How far a verification has come, reported after each page.
    public struct Progress: Sendable {
        /// Events checked so far.
        public var eventsChecked: Int
        /// Streams met so far.
        public var streamsChecked: Int
        /// Breaks found so far.
        public var breakCount: Int
        /// Events to check in all: the table's estimate for the whole log (its statistics), exact for one stream.
        public var estimatedEvents: Int
        /// Time since the verification started.
        public var elapsed: Duration
    }
}
