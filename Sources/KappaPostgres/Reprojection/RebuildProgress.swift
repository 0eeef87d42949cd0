/// How far a bulk rebuild has come: reported while it runs, for progress bars and logs.
public struct RebuildProgress: Sendable, Hashable {
    /// The projection's name.
    public var projection: String
    /// The version being rebuilt.
    public var version: Int
    /// Events of the rebuild's range applied so far (including before a resumed rebuild's restart).
    public var eventsDone: Int
    /// Events between where the rebuild started and the head it rebuilds up to.
    public var eventsTotal: Int
    /// Events applied since this process started on the rebuild.
    public var eventsThisRun: Int
    /// Time since this process started on the rebuild.
    public var elapsed: Duration
    /// Workers (partitions of the streams) applying the log.
    public var partitions: Int

    /// A report from its parts; the runtime makes these while it rebuilds.
    public init(projection: String, version: Int, eventsDone: Int, eventsTotal: Int, eventsThisRun: Int, elapsed: Duration, partitions: Int) {
        self.projection = projection
        self.version = version
        self.eventsDone = eventsDone
        self.eventsTotal = eventsTotal
        self.eventsThisRun = eventsThisRun
        self.elapsed = elapsed
        self.partitions = partitions
    }

    /// Events per second in this process.
    public var eventsPerSecond: Double {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return seconds > 0 ? Double(eventsThisRun) / seconds : 0
    }

    /// Estimated time to the end at the current rate, if there is a rate.
    public var remaining: Duration? {
        let rate = eventsPerSecond
        guard rate > 0, eventsTotal >= eventsDone else { return nil }
        return .milliseconds(Int64(Double(eventsTotal - eventsDone) / rate * 1000))
    }
}
