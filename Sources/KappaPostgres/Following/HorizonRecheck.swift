/// How long a follower that read nothing new waits for a wake-up.
///
/// Its idle poll interval, as a rule: appends ring its doorbell. But when committed events wait
/// beyond the gap-free horizon — held back by an older transaction that is still open, which may be
/// no append at all (another projection's batch, an application's transaction) — the commit that
/// releases them rings nothing. Then it looks again after 1 ms, doubling up to 100 ms (or the idle
/// interval, if shorter), for as long as they are held back.
struct HorizonRecheck {
    static let first = Duration.milliseconds(1)
    static let longest = Duration.milliseconds(100)

    /// How long the reads have waited in a row, held back, before the refined horizon is read.
    static let refineAfter = Duration.milliseconds(100)

    private var next: Duration?
    private var held = Duration.zero

    /// A read returned events: the next hold-up starts again at 1 ms.
    mutating func progressed() {
        next = nil
        held = .zero
    }

    /// Whether the next read should look past open transactions that cannot append to the log (the
    /// refined horizon, which costs a look at every open transaction): once the rechecks of one
    /// hold-up have waited ``refineAfter`` in all, and on every recheck after.
    var refine: Bool { held >= Self.refineAfter }

    /// The wait before the next read, after one that returned nothing new.
    mutating func timeout(heldBack: Bool, idle: Duration) -> Duration {
        guard heldBack else {
            next = nil
            held = .zero
            return idle
        }
        let timeout = min(next ?? Self.first, idle)
        next = min(timeout * 2, Self.longest)
        held += timeout
        return timeout
    }
}
