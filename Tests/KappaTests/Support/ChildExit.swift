import Foundation
import Synchronization

/// A child process's exit, awaited without holding a thread: `Process.waitUntilExit()` blocks one of
/// Swift's shared pool (two on this machine) for as long as the child runs, and with two such waits
/// at once every other test's task stalls — the 100 ms deadline test once took over 2 s that way.
final class ChildExit: Sendable {
    private struct State {
        var exited = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Watches `process`; call before `process.run()`, as this sets its termination handler.
    init(of process: Process) {
        process.terminationHandler = { [self] _ in
            let waiting = state.withLock { state in
                state.exited = true
                defer { state.waiting = [] }
                return state.waiting
            }
            for continuation in waiting { continuation.resume() }
        }
    }

    /// Returns once the process has exited.
    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let exited = state.withLock { state in
                if !state.exited { state.waiting.append(continuation) }
                return state.exited
            }
            if exited { continuation.resume() }
        }
    }

    /// Returns `true` once the process has exited, or `false` after `limit` if it has not.
    func wait(atMost limit: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.wait()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            defer { group.cancelAll() }
            return await group.next() ?? false
        }
    }
}
