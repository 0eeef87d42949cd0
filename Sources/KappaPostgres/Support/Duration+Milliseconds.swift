extension Duration {
    /// The duration in whole milliseconds, rounded down: what PostgreSQL's time-out settings take.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }
}
