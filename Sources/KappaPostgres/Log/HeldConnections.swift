import Logging
import PostgresNIO
import Synchronization

/// Connections the event store keeps leased from its client's pool for appends, while it runs
/// (``PostgresEventStore/run()``).
///
/// An append borrows an idle one — a lock, no task hop, no timer — and gives it back; with none idle
/// it leases from the pool as before. A pool lease costs an append 60–100 µs of the client's CPU here
/// (the pool's bookkeeping and the keep-alive timer it starts for every connection released idle),
/// which a lone writer pays in its latency and several writers pay in the cores they share with the
/// server. Each connection is held by a task of ``hold(_:from:logger:)``: when it closes, that task
/// drops it and leases another; when the store stops, each waits for its connection to be given back
/// before it returns it to the pool.
package final class HeldConnections: Sendable {
    private struct Member {
        let connection: PostgresConnection
        var borrowed = false
        /// The holder waiting for the borrower to give the connection back, to let it go.
        var release: CheckedContinuation<Void, Never>?
    }

    private struct State {
        var members: [ObjectIdentifier: Member] = [:]
        var idle: [ObjectIdentifier] = []
    }

    private let state = Mutex(State())
    /// How often a held connection that sat idle is checked, and how long the check may take before
    /// the connection is closed (and replaced). The pool checks only the connections it has idle.
    let pingInterval: Duration
    let pingTimeout: Duration
    /// Appends that ran on a held connection (for the tests and the benchmark).
    package let borrows = Atomic<Int>(0)
    /// Connections taken from the pool to hold, replacements included.
    package let holds = Atomic<Int>(0)

    /// Checks made of idle held connections.
    package let pings = Atomic<Int>(0)

    package init(pingInterval: Duration = .seconds(30), pingTimeout: Duration = .seconds(10)) {
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
    }

    /// Connections held now.
    package var count: Int { state.withLock { $0.members.count } }

    /// An idle held connection, now borrowed; `nil` when none is idle (or none is held).
    func borrow() -> PostgresConnection? {
        let connection = state.withLock { state -> PostgresConnection? in
            while let id = state.idle.popLast() {
                guard let member = state.members[id], !member.connection.isClosed else { continue }
                state.members[id]?.borrowed = true
                return member.connection
            }
            return nil
        }
        if connection != nil { borrows.add(1, ordering: .relaxed) }
        return connection
    }

    /// Gives back a connection ``borrow()`` handed out.
    func giveBack(_ connection: PostgresConnection) {
        let id = ObjectIdentifier(connection)
        let release = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard var member = state.members[id] else { return nil }
            member.borrowed = false
            if let release = member.release {
                member.release = nil
                state.members[id] = member
                return release
            }
            state.members[id] = member
            if !connection.isClosed { state.idle.append(id) }
            return nil
        }
        release?.resume()
    }

    /// Holds `count` connections of `client`'s pool until cancelled, each replaced when it closes.
    func hold(_ count: Int, from client: PostgresClient, logger: Logger) async {
        await withDiscardingTaskGroup { group in
            for _ in 0..<count {
                group.addTask {
                    while !Task.isCancelled {
                        do {
                            try await client.withConnection { connection in
                                await self.keep(connection)
                            }
                        } catch {
                            logger.debug("could not hold a connection for appends", metadata: ["error": "\(String(reflecting: error))"])
                        }
                        // Not straight back: a server that refuses connections is not asked in a loop.
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                }
            }
        }
    }

    /// Lends `connection` until it closes or the task is cancelled; returns once no borrower has it.
    private func keep(_ connection: PostgresConnection) async {
        let id = ObjectIdentifier(connection)
        holds.add(1, ordering: .relaxed)
        state.withLock { state in
            state.members[id] = Member(connection: connection)
            state.idle.append(id)
        }
        let ended = OnceResult<Void>()
        connection.closeFuture.whenComplete { _ in ended.resume(with: .success(())) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    _ = try? await withCheckedThrowingContinuation { ended.install($0) }
                } onCancel: {
                    ended.resume(with: .success(()))
                }
            }
            group.addTask { await self.check(connection) }
            await group.next()
            group.cancelAll()
        }
        await withCheckedContinuation { (release: CheckedContinuation<Void, Never>) in
            let free = state.withLock { state -> Bool in
                state.idle.removeAll { $0 == id }
                guard state.members[id]?.borrowed == true else {
                    state.members[id] = nil
                    return true
                }
                state.members[id]?.release = release
                return false
            }
            if free { release.resume() }
        }
        state.withLock { _ = $0.members.removeValue(forKey: id) }
    }

    /// Every ``pingInterval``, while `connection` is idle, sends it `SELECT 1`; one that fails or takes
    /// longer than ``pingTimeout`` (a connection a NAT or a balancer dropped without a word, which
    /// would hold an append until TCP gives up) is closed, which ends ``keep(_:)``. Until cancelled.
    private func check(_ connection: PostgresConnection) async {
        let id = ObjectIdentifier(connection), timeout = pingTimeout
        while !Task.isCancelled {
            try? await Task.sleep(for: pingInterval)
            let taken = state.withLock { state -> Bool in
                guard let index = state.idle.firstIndex(of: id) else { return false } // borrowed: in use
                state.idle.remove(at: index)
                state.members[id]?.borrowed = true
                return true
            }
            guard taken, !Task.isCancelled else {
                if taken { giveBack(connection) }
                continue
            }
            pings.add(1, ordering: .relaxed)
            let alive = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    (try? await ConnectionGuard.shared.run(on: connection) {
                        try await connection.query("SELECT 1", logger: Logger(label: "kappa.held-connections")).collect()
                    }) != nil
                }
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    return false
                }
                let first = await group.next() ?? false
                // Closed, a check still waiting fails at once (ConnectionGuard).
                if !first { try? await connection.close() }
                group.cancelAll()
                return first
            }
            giveBack(connection)
            if !alive { return }
        }
    }
}
