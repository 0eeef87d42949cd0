import Synchronization

/// The end of a rebuild's follow-on for a lagging promotion
/// (``FollowStateMachine/promotionFollowOn``), kept across the runner's retries after transient
/// faults, so that they do not start it over.
final class FollowOnDeadline: Sendable {
    let until = Mutex<ContinuousClock.Instant?>(nil)
}
