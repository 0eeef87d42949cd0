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
    @Test func concurrentAppendsShareTransactionsAndKeepTheirPromises() async throws {
        try await withEventStore { store, client in
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
    @Test func aFailedGroupSendsEachAppendAgainAlone() async throws {
        try await withEventStore { store, _ in
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
}
