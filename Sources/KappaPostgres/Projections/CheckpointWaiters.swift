import Kappa
import Synchronization

/// Read-your-writes waits on the checkpoints this runtime's runners commit: each wait is one
/// continuation, resumed by the commit that passes its position, by a change of lease, by its
/// deadline (from ``Deadlines``) or by cancellation — no task, no timer and no wake-up per commit
/// for the waits a commit does not satisfy.
final class CheckpointWaiters: Sendable {
    private struct Waiter {
        let key: LeaseKey
        let position: LogPosition
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var next: UInt64 = 0
        var waiting: [UInt64: Waiter] = [:]
        /// Waits that have begun and not yet returned.
        var open: Set<UInt64> = []
        /// Open waits ended (cancelled, or past their deadline) before their continuation was stored.
        var ended: Set<UInt64> = []
    }

    private let state = Mutex(State())
    private let deadlines: Deadlines
    /// The runners pausing to coalesce (``pause(_:for:unless:began:)``), by key: rung when a wait on their key begins.
    let pausing = Mutex<[LeaseKey: Doorbell]>([:])

    init(deadlines: Deadlines) {
        self.deadlines = deadlines
    }

    /// Returns once a commit for `key` reached `position`, the lease on `key` changed hands in this
    /// process, `deadline` passed, or the task was cancelled — the caller looks again at which.
    /// - Parameter passed: Whether `key`'s committed checkpoint has passed `position` already; asked
    ///   after the wait is registered, so a commit between the caller's look and the registration is not missed.
    func wait(for key: LeaseKey, toPass position: LogPosition, until deadline: ContinuousClock.Instant, passed: () -> Bool) async {
        let id = state.withLock { state in
            state.next += 1
            state.open.insert(state.next)
            return state.next
        }
        let timer = deadlines.at(deadline) { [weak self] in self?.end(id) }
        defer {
            deadlines.cancel(timer)
            state.withLock { state in
                state.open.remove(id)
                state.ended.remove(id) // a deadline that passed as the wait ended
            }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.ended.remove(id) != nil { return true }
                    state.waiting[id] = Waiter(key: key, position: position, continuation: continuation)
                    return false
                }
                if resumeNow || passed() {
                    resume(id, or: resumeNow ? continuation : nil)
                } else {
                    pausing.withLock { $0[key] }?.ring() // a reader waits: no more pausing
                }
            }
        } onCancel: {
            end(id)
        }
    }

    /// Ends wait `id` early: resumes it if it is waiting, else (if it has not returned) makes it
    /// return as soon as it would wait.
    private func end(_ id: UInt64) {
        let waiter = state.withLock { state -> Waiter? in
            if let waiter = state.waiting.removeValue(forKey: id) { return waiter }
            if state.open.contains(id) { state.ended.insert(id) } // else the wait has returned already
            return nil
        }
        waiter?.continuation.resume()
    }

    /// Waits registered now.
    var count: Int { state.withLock { $0.waiting.count } }

    /// Whether a wait on `key` is registered now.
    func isWaiting(on key: LeaseKey) -> Bool {
        state.withLock { $0.waiting.values.contains { $0.key == key } }
    }

    /// Whether no wait is open and nothing is kept for one.
    var isIdle: Bool { state.withLock { $0.waiting.isEmpty && $0.open.isEmpty && $0.ended.isEmpty } }

    /// A runner of this runtime committed `key` at `position`: resumes the waits it satisfies.
    func committed(_ key: LeaseKey, at position: LogPosition) {
        let satisfied = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            let ids = state.waiting.filter { $0.value.key == key && $0.value.position <= position }.map(\.key)
            return ids.compactMap { state.waiting.removeValue(forKey: $0)?.continuation }
        }
        for continuation in satisfied { continuation.resume() }
    }

    /// The lease on `key` was taken or given up in this process: every wait on it looks again.
    func wake(_ key: LeaseKey) {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            let ids = state.waiting.filter { $0.value.key == key }.map(\.key)
            return ids.compactMap { state.waiting.removeValue(forKey: $0)?.continuation }
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Resumes wait `id` if it is still waiting (each wait is resumed once, by whoever removes it).
    private func resume(_ id: UInt64, or unstored: CheckedContinuation<Void, Never>? = nil) {
        if let unstored {
            unstored.resume()
            return
        }
        state.withLock { $0.waiting.removeValue(forKey: id) }?.continuation.resume()
    }
}
