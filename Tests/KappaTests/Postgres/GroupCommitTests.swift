import Foundation
import Kappa
import KappaPostgres
import KappaTesting
import PostgresNIO
import Synchronization
import Testing

/// Concurrent appends sent together, as one statement and one transaction (group commit), each
/// keeping the promises it has alone.
@Suite("PostgreSQL log: group commit", .serialized)
struct GroupCommitTests {
    /// 16 writers, 320 appends of one to three events to 80 streams, some at a stale version: every
    /// append either wrote all its events at the versions and positions it returned, or failed
    /// with a version conflict and wrote none; and they shared transactions.
    @Test(arguments: [AppendPath.prepared, .libpq]) func concurrentAppendsShareTransactionsAndKeepTheirPromises(path: AppendPath) async throws {
        try await withEventStore(path) { store, client in
            let outcomes = try await withThrowingTaskGroup(of: [(StreamID, [NewEvent], AppendResult?)].self) { group in
                for writer in 0..<16 {
                    group.addTask {
                        var mine: [(StreamID, [NewEvent], AppendResult?)] = []
                        for round in 0..<20 {
                            let stream = try StreamID("account-\(writer)-\(round % 5)")
                            let events = try deposits(1 + (writer + round) % 3)
                            // Every fourth append claims the stream is new: from its second round on, a conflict.
                            let expected: ExpectedVersion = round % 4 == 3 ? .noStream : .any
                            do {
                                mine.append((stream, events, try await store.append(events, to: stream, expectedVersion: expected)))
                            } catch let error as EventStoreError where error.code == .versionConflict {
                                mine.append((stream, events, nil))
                            }
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(outcomes.count == 320)
            // Per writer, rounds 7, 11, 15 and 19 claim streams written before; round 3's is new.
            let conflicts = outcomes.filter { $0.2 == nil }.count
            #expect(conflicts == 16 * 4)
            var written = 0
            for (stream, events, result) in outcomes {
                let stored = try await store.readStream(stream, from: 1, limit: 1_000)
                let mine = stored.filter { event in events.contains { $0.id == event.id } }
                guard let result else {
                    #expect(mine.isEmpty, "a conflicting append wrote nothing")
                    continue
                }
                written += events.count
                #expect(mine.map(\.id) == events.map(\.id), "all of an append's events, in order")
                #expect(mine.map(\.position) == result.positions)
                #expect(mine.last?.streamVersion == result.streamVersion)
                #expect(Set(mine.map(\.position.transactionID)).count == 1, "an append's events commit together")
            }
            for writer in 0..<16 {
                for n in 0..<5 {
                    let stored = try await store.readStream(try StreamID("account-\(writer)-\(n)"), from: 1, limit: 1_000)
                    let versions = stored.map(\.streamVersion)
                    let expected = Array(Int64(1)...Int64(max(1, versions.count)))
                    #expect(versions == expected, "stream versions without gaps")
                }
            }
            let schema = store.configuration.schema
            #expect(try await scalar("SELECT count(*) FROM \(unescaped: schema).events", on: client) == Int64(written))
            let transactions = try await scalar("SELECT count(DISTINCT transaction_id) FROM \(unescaped: schema).events", on: client)
            let appends = outcomes.filter { $0.2 != nil }.count
            #expect(transactions < Int64(appends), "\(transactions) transactions for \(appends) appends")
            #expect(store.appendGroups.groupsSent >= 1)
        }
    }

    /// A group whose statement fails (here: one append reuses an event id stored in another stream)
    /// wrote nothing; each of its appends is sent again alone, so only that one fails.
    @Test(arguments: [AppendPath.prepared, .libpq]) func aFailedGroupSendsEachAppendAgainAlone(path: AppendPath) async throws {
        try await withEventStore(path) { store, _ in
            let taken = try deposits(1)
            _ = try await store.append(taken, to: "account-taken", expectedVersion: .noStream)
            var round = 0
            while store.appendGroups.groupsResent == 0 {
                round += 1
                let current = round
                try #require(round <= 200, "no group with the duplicate formed in 200 rounds")
                let results = try await withThrowingTaskGroup(of: (Int, Result<AppendResult, any Error>).self) { group in
                    for writer in 0..<8 {
                        group.addTask {
                            let events = writer == 7 ? taken : try deposits(1)
                            do {
                                let stream = try StreamID("account-\(current)-\(writer)")
                                return (writer, .success(try await store.append(events, to: stream, expectedVersion: .any)))
                            } catch {
                                return (writer, .failure(error))
                            }
                        }
                    }
                    return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
                }
                for (writer, result) in results {
                    if writer == 7 {
                        guard case .failure(let error as EventStoreError) = result else {
                            Issue.record("the duplicate was appended: \(result)")
                            continue
                        }
                        #expect(error.code == .duplicateEventID)
                    } else {
                        let appended = try result.get()
                        let stored = try await store.readStream(try StreamID("account-\(round)-\(writer)"), from: 1, limit: 10)
                        #expect(stored.map(\.position) == appended.positions)
                    }
                }
            }
        }
    }

    /// A group whose connection is lost may have committed, as a lone append may: each of its appends
    /// fails with `connectionLost` naming its own stream. Here the group's leader is handed the
    /// connection just killed (the pool can, before it notices), or its statement is killed while it
    /// waits for a lock: either way before commit, so none of them wrote anything.
    @Test(arguments: [AppendPath.prepared, .libpq]) func aGroupThatLosesItsConnectionFailsEachAppendWithConnectionLost(path: AppendPath) async throws {
        // Two in flight: one append alone is killed, the other goes on, and the group waits behind them.
        try await withEventStore(path, appendsInFlight: 2) { store, client in
            let table = "\(store.configuration.schema).events"
            let finished = Locked(0)
            /// A backend of an append waiting for the lock, once there is one; `nil` if `stop` holds first.
            @Sendable func waitingBackend(_ pattern: String, unless stop: @escaping @Sendable () -> Bool = { false }) async throws -> Int32? {
                let pid = Locked<Int32?>(nil)
                try await eventually("an append waits for the lock", timeout: .seconds(10)) {
                    // Resent if the pool hands out the connection just killed (as it can, before it notices).
                    let found = try await client.guardedRows(
                        """
                        SELECT pid FROM pg_stat_activity
                        WHERE wait_event_type = 'Lock' AND query LIKE \(pattern) AND query LIKE \("%\(store.configuration.schema)%")
                        LIMIT 1
                        """, logger: testLogger, resending: true
                    ) { try $0.decode(Int32.self) }
                    pid.withLock { $0 = found.first }
                    return pid.withLock { $0 } != nil || stop()
                }
                return pid.withLock { $0 }
            }
            try await client.withConnection { blocker in
                // Appends wait for this lock, so their statements can be killed while they run.
                try await blocker.query("BEGIN", logger: testLogger)
                try await blocker.query(PostgresQuery(unsafeSQL: "LOCK TABLE \(table) IN SHARE ROW EXCLUSIVE MODE"), logger: testLogger)
                @Sendable func append(_ name: String) -> Task<AppendResult, any Error> {
                    Task {
                        defer { finished.withLock { $0 += 1 } }
                        return try await store.append(try deposits(1), to: try StreamID(name), expectedVersion: .noStream)
                    }
                }
                // Two appends alone fill both slots; four more wait, to go as one group.
                let alone = [append("alone-1"), append("alone-2")]
                try await eventually("both alone appends wait for the lock", timeout: .seconds(10)) {
                    try await scalar(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%WITH head%' AND query LIKE \("%\(store.configuration.schema)%")",
                        on: client) == 2
                }
                let grouped = ["grouped-1", "grouped-2", "grouped-3", "grouped-4"]
                let members = grouped.map(append)
                try await eventually("four appends queue", timeout: .seconds(10)) { store.appendGroups.waiting == 4 }
                // One alone append's connection killed: its slot goes to the group, which waits too.
                let first = try #require(try await waitingBackend("%WITH head%"))
                _ = try await scalar("SELECT pg_terminate_backend(\(first))::int::int8", on: client)
                // The group's statement waits for the lock too, unless the pool handed its leader the
                // connection just killed (it can, before it notices): then the group has failed already.
                let group = try await waitingBackend("%AS MATERIALIZED%") { finished.withLock { $0 } == 5 }
                #expect(store.appendGroups.groupsSent == 1)
                if let group {
                    _ = try await scalar("SELECT pg_terminate_backend(\(group))::int::int8", on: client)
                }
                for (name, member) in zip(grouped, members) {
                    let error = await #expect(throws: EventStoreError.self) { try await member.value }
                    #expect(error?.code == .connectionLost)
                    #expect(error?.stream == name)
                }
                try await blocker.query("ROLLBACK", logger: testLogger)
                var outcomes: [Bool] = []
                for task in alone { outcomes.append((try? await task.value) != nil) }
                #expect(outcomes.filter { $0 }.count == 1, "the killed alone append failed, the other went on")
            }
            let streams = try await client.guardedRows(
                PostgresQuery(unsafeSQL: "SELECT DISTINCT stream_id FROM \(table) ORDER BY 1"), logger: testLogger
            ) { try $0.decode(String.self) }
            #expect(streams.count == 1 && streams[0].hasPrefix("alone-"), "written: \(streams)")
        }
    }
}
