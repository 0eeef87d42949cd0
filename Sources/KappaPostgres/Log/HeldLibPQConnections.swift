import CLibPQ
import Logging
import Synchronization

/// libpq connections the event store holds for its appends (alone or grouped) and its followers'
/// page reads while it runs, with ``PostgresEventStore/Configuration/appendConnectionString`` set.
///
/// An append borrows an idle one under a lock, sends its prepared statement from its own task and
/// is resumed by the ``LibPQReactor``'s thread: no pool lease, no task of its own, no thread switch
/// to send. An idle connection's socket is watched by the reactor too, so a connection the server
/// ends while idle is dropped at once and replaced, as a held postgres-nio connection is.
package final class HeldLibPQConnections: Sendable {
    private struct State {
        var idle: [ReactorConnection] = []
        /// Per holder (by connection), what wakes it when its connection breaks or the store stops.
        var ended: [ObjectIdentifier: OnceResult<Void>] = [:]
    }

    private let state = Mutex(State())
    /// Appends sent on a held libpq connection (for the tests and the benchmark).
    package let borrows = Atomic<Int>(0)
    /// Connections opened to hold, replacements included.
    package let holds = Atomic<Int>(0)
    /// Connections that failed to open (or to prepare the appends).
    package let failedOpens = Atomic<Int>(0)
    /// Followers' page reads answered on a held connection (for the tests and the benchmark).
    package let pageReads = Atomic<Int>(0)
    /// Whether followers' page reads go through an idle held connection: until one fails with an
    /// error of its own (a role that may append but not read), then through the client.
    private let readingPages = Atomic<Bool>(true)

    package init() {}

    /// Connections held and idle now.
    package var idleCount: Int { state.withLock { $0.idle.count } }

    var readsPages: Bool { readingPages.load(ordering: .relaxed) }

    func stopReadingPages() { readingPages.store(false, ordering: .relaxed) }

    /// An idle held connection, now borrowed; `nil` when none is idle.
    func borrow() -> ReactorConnection? {
        let connection = state.withLock { $0.idle.popLast() }
        if connection != nil { borrows.add(1, ordering: .relaxed) }
        return connection
    }

    /// Runs `body` on an idle held connection, given back after. `nil` when none is idle, or when
    /// the connection refused the statement or never received it whole (nothing was written; the
    /// connection is replaced): the caller sends it through the client instead.
    func withIdleConnection<R: Sendable>(_ body: (ReactorConnection) async throws -> R) async throws -> R? {
        guard let held = borrow() else { return nil }
        defer { giveBack(held) }
        do {
            return try await body(held)
        } catch let error as LibPQError where error.isTheConnections || error.notSent {
            held.markBroken()
            return nil
        }
    }

    /// Gives back a connection ``borrow()`` handed out: kept while it is usable and the store runs,
    /// else its holder is woken to replace it or stop.
    func giveBack(_ connection: ReactorConnection) {
        let id = ObjectIdentifier(connection)
        let broken = state.withLock { state -> OnceResult<Void>? in
            guard let ended = state.ended[id] else { return nil }
            guard connection.isUsable else { return ended }
            state.idle.append(connection)
            watchIdle(connection)
            return nil
        }
        broken?.resume(with: .success(()))
    }

    /// Holds `count` connections opened by `open` until cancelled, each replaced when it breaks.
    func hold(_ count: Int, logger: Logger, open: @escaping @Sendable () async throws -> ReactorConnection) async {
        await withDiscardingTaskGroup { group in
            for _ in 0..<count {
                group.addTask {
                    var failures = 0
                    while !Task.isCancelled {
                        do {
                            let connection = try await open()
                            failures = 0
                            await self.keep(connection)
                        } catch {
                            // Said once a spell (a wrong appendConnectionString shows): appends go through the client meanwhile.
                            failures += 1
                            self.failedOpens.add(1, ordering: .relaxed)
                            logger.log(
                                level: failures == 1 ? .warning : .debug, "could not open a libpq connection for appends; they go through the client",
                                metadata: ["error": "\(String(reflecting: error))"])
                        }
                        // Not straight back: a server that refuses connections (or a log not migrated
                        // yet, which fails the preparation) is asked again after 0.1 s, doubling up to 6.4 s.
                        try? await Task.sleep(for: .milliseconds(100) * (1 << min(max(failures - 1, 0), 6)))
                    }
                }
            }
        }
    }

    /// Lends `connection` until it breaks or the task is cancelled, then stops lending it: an
    /// append that has it finishes on it, and the connection closes when the last reference goes.
    private func keep(_ connection: ReactorConnection) async {
        let id = ObjectIdentifier(connection), ended = OnceResult<Void>()
        holds.add(1, ordering: .relaxed)
        state.withLock { state in
            state.ended[id] = ended
            state.idle.append(connection)
            watchIdle(connection)
        }
        await withTaskCancellationHandler {
            _ = try? await withCheckedThrowingContinuation { ended.install($0) }
        } onCancel: {
            ended.resume(with: .success(()))
        }
        // Idle: dropped now. Borrowed: its borrower gives it back, which finds no holder and lets it go.
        state.withLock { state in
            state.ended[id] = nil
            state.idle.removeAll { $0 === connection }
        }
    }

    /// Has the reactor read what an idle connection receives: the end of a session the server
    /// closed (`pg_terminate_backend`, a restart) breaks it, and its holder replaces it.
    /// Called under the lock; the handler takes it too, so it never reads a connection being borrowed.
    private func watchIdle(_ connection: ReactorConnection) {
        LibPQReactor.shared.watch(connection.socket, owner: ObjectIdentifier(connection), for: .read) { [weak connection, self] in
            guard let connection else { return nil }
            let (idle, ended) = state.withLock { state -> (Bool, OnceResult<Void>?) in
                guard state.idle.contains(where: { $0 === connection }) else { return (false, nil) } // borrowed meanwhile
                guard !connection.readWhileIdle() else { return (true, nil) }
                state.idle.removeAll { $0 === connection }
                return (false, state.ended[ObjectIdentifier(connection)])
            }
            ended?.resume(with: .success(()))
            return idle ? .read : nil
        }
    }
}
