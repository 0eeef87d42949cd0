import Kappa
import PostgresNIO
import Synchronization

/// Group commit for concurrent appends: while ``limit`` appends are in flight, appends that arrive
/// wait, and go next as one statement and one transaction (``GroupAppendStatement``), led by the
/// first of them. A lone writer never waits: its appends go alone, as before.
///
/// Each append's promises hold as if it had gone alone: its events commit together or not at all;
/// an expectation that does not hold fails it alone; a statement that fails (a concurrent append
/// took a version, a duplicate event id, a log whose order needs repair) wrote nothing, and every
/// append in it is sent again on its own. A group whose connection was lost fails each of its
/// appends with `connectionLost`, as each alone would: the group may have committed. An append
/// waiting for its group is not cancelled with its task.
package final class AppendGroups: Sendable {
    /// What an append does when its turn comes.
    enum Turn: Sendable {
        /// Go alone.
        case alone
        /// Lead a group with these appends.
        case lead([Member])
        /// Sent in a group: the rows it returned for this append (none: its expectation did not hold).
        case sent([AppendStatement.Row])
        /// The group failed with a server error, or its leader was cancelled: go alone.
        case resend
        /// The group's connection was lost: it may have committed, as a lone append may.
        case connectionLost
    }

    /// What a member of a group whose connection was lost throws; the store names the member's stream.
    struct LeaderLostConnection: Error {}

    struct Member: Sendable {
        let statement: AppendStatement
        let turn: CheckedContinuation<Turn, Never>
    }

    private struct State {
        var inFlight = 0
        var waiting: [Member] = []
    }

    /// Appends (alone or in groups) in flight at once before arrivals wait.
    let limit: Int
    /// The most appends, and events, in one group.
    let maximumAppends: Int
    let maximumEvents: Int
    /// Appends of more events go alone: they amortise their round trip and commit already, and
    /// grouped (the rows numbered and sorted in one statement) they went slower (100-event appends,
    /// 4 writers: 31,600 events/s grouped against 58,300 alone).
    static let largestGrouped = 16
    private let state = Mutex(State())
    private let groups = Atomic<Int>(0)
    private let resends = Atomic<Int>(0)

    /// Appends waiting for their turn now.
    package var waiting: Int { state.withLock { $0.waiting.count } }

    /// Groups of two appends or more sent so far.
    package var groupsSent: Int { groups.load(ordering: .relaxed) }
    /// Groups whose statement failed without losing its connection, their appends sent again alone, so far.
    package var groupsResent: Int { resends.load(ordering: .relaxed) }

    init(limit: Int = 1, maximumAppends: Int = 64, maximumEvents: Int = 256) {
        self.limit = limit
        self.maximumAppends = maximumAppends
        self.maximumEvents = maximumEvents
    }

    /// The rows `statement` inserted: sent alone with `alone`, or in a group with `group` (which
    /// returns the rows of every append, by stream). Throws what `alone` throws, or, leading a
    /// group, its lost connection.
    func rows(
        for statement: AppendStatement,
        alone: @Sendable (AppendStatement) async throws -> [AppendStatement.Row],
        group: @Sendable ([AppendStatement]) async throws -> [GroupAppendStatement.Row]
    ) async throws -> [AppendStatement.Row] {
        // A slot free: the append goes now, without suspending for a turn.
        let free = state.withLock { state -> Bool in
            guard state.inFlight < limit else { return false }
            state.inFlight += 1
            return true
        }
        let turn =
            free
            ? .alone
            : await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.inFlight < limit {
                        state.inFlight += 1
                        return true
                    }
                    state.waiting.append(Member(statement: statement, turn: continuation))
                    return false
                }
                if now { continuation.resume(returning: .alone) }
            }
        switch turn {
        case .alone:
            defer { handOn() }
            return try await alone(statement)
        case .lead(let others):
            defer { handOn() }
            return try await lead(statement, others, alone: alone, group: group)
        case .sent(let rows): return rows
        case .resend: return try await alone(statement)
        case .connectionLost: throw LeaderLostConnection()
        }
    }

    private func lead(
        _ statement: AppendStatement, _ others: [Member],
        alone: @Sendable (AppendStatement) async throws -> [AppendStatement.Row],
        group: @Sendable ([AppendStatement]) async throws -> [GroupAppendStatement.Row]
    ) async throws -> [AppendStatement.Row] {
        let rows: [GroupAppendStatement.Row]
        groups.add(1, ordering: .relaxed)
        do {
            rows = try await group([statement] + others.map(\.statement))
        } catch {
            // A lost connection leaves the group's outcome unknown, as a lone append's: each fails
            // with `connectionLost` (sent again, an append finds its events stored by their ids).
            // Anything else wrote nothing: each is sent again alone.
            let lost = isConnectionLoss(error) || (error as? EventStoreError)?.code == .connectionLost
            for other in others { other.turn.resume(returning: lost ? .connectionLost : .resend) }
            if !lost { resends.add(1, ordering: .relaxed) }
            let refused = (error as? PSQLError)?.serverInfo != nil || (error as? LibPQError)?.sqlState != nil
            if refused && !lost { return try await alone(statement) }
            throw error
        }
        var byStream: [String: [AppendStatement.Row]] = [:]
        for row in rows { byStream[row.stream, default: []].append((row.position, row.transaction, row.version)) }
        for other in others { other.turn.resume(returning: .sent(byStream[other.statement.stream] ?? [])) }
        return byStream[statement.stream] ?? []
    }

    /// Hands this slot to the next group, or frees it.
    private func handOn() {
        let next = state.withLock { state -> (leader: Member, others: [Member])? in
            guard !state.waiting.isEmpty else {
                state.inFlight -= 1
                return nil
            }
            var streams: Set<String> = [], events = 0
            var picked: [Member] = [], rest: [Member] = []
            for member in state.waiting {
                let count = member.statement.events.count
                if picked.isEmpty
                    || (picked.count < maximumAppends && events + count <= maximumEvents && !streams.contains(member.statement.stream))
                {
                    picked.append(member)
                    streams.insert(member.statement.stream)
                    events += count
                } else {
                    rest.append(member)
                }
            }
            state.waiting = rest
            return (picked[0], Array(picked.dropFirst()))
        }
        guard let next else { return }
        next.leader.turn.resume(returning: next.others.isEmpty ? .alone : .lead(next.others))
    }
}
