import Synchronization

/// Runs actions at their deadlines from one sweeping task (started when the first deadline is set,
/// ended when none is left), instead of a sleeping task and a timer per deadline: at 1,000
/// read-your-writes waits a second, those timers and their thread wake-ups had cost the process more
/// than the waits themselves. An action runs at most ``tick`` late.
final class Deadlines: Sendable {
    /// The sweep interval: the most an action runs late.
    let tick: Duration

    private struct Entry {
        let deadline: ContinuousClock.Instant
        let action: @Sendable () -> Void
    }

    private struct State {
        var next: UInt64 = 0
        var entries: [UInt64: Entry] = [:]
        var sweeping = false
    }

    private let state = Mutex(State())

    init(tick: Duration = .milliseconds(20)) {
        self.tick = tick
    }

    /// Runs `action` once `deadline` has passed, unless ``cancel(_:)`` comes first.
    /// - Returns: The id to cancel it with.
    @discardableResult
    func at(_ deadline: ContinuousClock.Instant, _ action: @escaping @Sendable () -> Void) -> UInt64 {
        let (id, start) = state.withLock { state -> (UInt64, Bool) in
            state.next += 1
            state.entries[state.next] = Entry(deadline: deadline, action: action)
            defer { state.sweeping = true }
            return (state.next, !state.sweeping)
        }
        if start { Task { await self.sweep() } }
        return id
    }

    /// Forgets a deadline whose action has not run yet.
    func cancel(_ id: UInt64) {
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }

    private func sweep() async {
        while true {
            try? await Task.sleep(for: tick)
            let now = ContinuousClock.now
            let due = state.withLock { state -> [Entry]? in
                let due = state.entries.filter { $0.value.deadline <= now }
                for id in due.keys { state.entries[id] = nil }
                if state.entries.isEmpty && due.isEmpty {
                    state.sweeping = false
                    return nil
                }
                return Array(due.values)
            }
            guard let due else { return }
            for entry in due.sorted(by: { $0.deadline < $1.deadline }) { entry.action() }
        }
    }
}
