import Kappa

/// Narrows a handler's rejection of a batch down to the events at fault, for live runners and
/// rebuild workers alike.
///
/// The batch is applied whole. When the handler rejects it (a ``HandlerFailure`` that is not a
/// transient fault), its events are applied one at a time, and each one the handler still rejects
/// is handed to the projection's policy (``PoisonEventPolicy``). A version dropped under the batch
/// fails in its handler too (its tables are gone): that is a lost lease, not a poison event.
enum PoisonIsolation {
    /// - Parameters:
    ///   - retryingAlone: a rejected batch of one event is applied once more on its own (a
    ///     single-statement batch's event, which may fail only as part of the combined statement).
    ///   - apply: one transaction for the events given; `whole` for the first try of the batch.
    ///   - isDropped: whether the version has been dropped meanwhile.
    ///   - poison: deals with a rejected event by policy; returns `true` when the projection stops.
    /// - Returns: `true` when the projection stopped.
    static func apply(
        _ events: [RecordedEvent], retryingAlone: Bool,
        apply: (_ events: [RecordedEvent], _ whole: Bool) async throws -> Void,
        isDropped: () async throws -> Bool,
        poison: (_ event: RecordedEvent, _ error: any Error) async throws -> Bool
    ) async throws -> Bool {
        do {
            try await apply(events, true)
            return false
        } catch let failure as HandlerFailure where !isTransient(failure) {
            if try await isDropped() { throw LeaseLost() }
            guard events.count > 1 || retryingAlone else { return try await poison(events[0], failure.underlying) }
        }
        for event in events {
            do {
                try await apply([event], false)
            } catch let failure as HandlerFailure where !isTransient(failure) {
                if try await poison(event, failure.underlying) { return true }
            }
        }
        return false
    }
}
