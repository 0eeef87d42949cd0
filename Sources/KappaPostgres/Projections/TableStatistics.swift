import Synchronization

/// When to refresh the planner's statistics of a version's tables while a catch-up fills them.
///
/// A version's tables start empty, and autovacuum analyses a table only a minute or more after it
/// has grown. Until then the planner plans the handler's statements for empty tables — and a
/// prepared statement (the pipelined path prepares each once per connection) keeps that plan: a
/// `DELETE … USING unnest(…)` keeps a sequential scan of a table that has meanwhile grown to
/// 700,000 rows (measured: a 1M-event catch-up took 29 s instead of 4.9 s). `ANALYZE` invalidates
/// those plans.
///
/// Events applied since the runner (or the rebuild) started are counted; the tables are analysed
/// when the count reaches ``first``, then each time it doubles: about 8 times for 1M events, none
/// more once live and growing slowly (autovacuum's work again).
final class TableStatistics: Sendable {
    /// Events applied before the first refresh.
    static let first = 5_000

    private struct State {
        var applied = 0
        var next = TableStatistics.first
    }

    private let state = Mutex(State())

    /// Counts `events` applied; `true` when the tables should be analysed now (once per threshold,
    /// however many callers count at once). Not while following live (`catchingUp` false: the page
    /// was not full), where the pause would be an event's latency; the next full page's batch then does.
    func applied(_ events: Int, catchingUp: Bool = true) -> Bool {
        state.withLock { state in
            state.applied += events
            guard catchingUp, state.applied >= state.next else { return false }
            while state.next <= state.applied { state.next *= 2 }
            return true
        }
    }
}
