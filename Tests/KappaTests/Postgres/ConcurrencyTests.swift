import Foundation
import Kappa
import KappaPostgres
import KappaTesting
import PostgresNIO
import Synchronization
import Testing

@Suite("PostgreSQL log under concurrency and faults", .serialized)
struct ConcurrencyTests {
    @Test(arguments: [AppendPath.prepared, .libpq]) func eightTasksRacingForOneVersionHaveOneWinner(path: AppendPath) async throws {
        try await withEventStore(path) { store, _ in
            _ = try await store.append(try deposits(1), to: "account-1", expectedVersion: .noStream)
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        do {
                            _ = try await store.append(try deposits(1), to: "account-1", expectedVersion: .exact(1))
                            return true
                        } catch let error as EventStoreError where error.code == .versionConflict {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 1)
            #expect(try await store.readStream("account-1", from: 1, limit: 100).map(\.streamVersion) == [1, 2])
        }
    }

    @Test func commandHandlerRetriesConvergeWithEachVersionWonOnce() async throws {
        try await withEventStore { store, client in
            var configuration = CommandHandler<AccountCommand, AccountEvent, AccountState>.Configuration()
            configuration.maximumAttempts = 200
            let handler = CommandHandler(
                decider: accountDecider, registry: AccountEvent.registry, store: store,
                configuration: configuration, logger: testLogger)
            try await CommandHandlerSpecification(handler).given([.opened(.init(owner: "ada"))], on: "account-1")
                .when(.deposit(cents: 1)).then([.deposited(.init(cents: 1))])
            let results = try await withThrowingTaskGroup(of: [CommandResult<AccountEvent, AccountState>].self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        var mine: [CommandResult<AccountEvent, AccountState>] = []
                        for _ in 0..<10 { mine.append(try await handler.handle(.deposit(cents: 1), on: "account-1")) }
                        return mine
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let versions = results.map(\.streamVersion).sorted()
            #expect(versions == Array(3...82), "each version won by exactly one command")
            #expect(results.map(\.attempts).reduce(0, +) > 80, "the race forced retries")
            #expect(try await handler.load("account-1").state == .open(balance: 81))
            #expect(try await scalar("SELECT count(DISTINCT stream_version) FROM \(unescaped: store.configuration.schema).events", on: client) == 82)
        }
    }

    @Test func aFollowerNeverSkipsEventsOfTransactionsThatCommitLate() async throws {
        try await withEventStore { store, _ in
            let committed = Locked<[UUID]>([])
            let rolledBack = Locked<Set<UUID>>([])
            let commitOrder = Locked<[Int64]>([]) // the first global position of each transaction, in commit order
            let seen = Locked<[RecordedEvent]>([])
            let (progress, progressed) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1))

            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await batch in store.followLog(after: .start, batchSize: 16, pollInterval: .milliseconds(2)) {
                        let count = seen.withLock {
                            $0 += batch
                            return $0.count
                        }
                        progressed.yield(count)
                    }
                }
                try await withThrowingTaskGroup(of: Void.self) { writers in
                    for writer in 0..<6 {
                        writers.addTask {
                            for round in 0..<15 {
                                let events = try deposits(Int.random(in: 1...3))
                                let rollback = round % 5 == 4
                                do {
                                    let first = try await store.withTransaction { tx in
                                        let result = try await tx.append(events, to: StreamID("account-\(writer)-\(round % 3)"), expectedVersion: .any)
                                        // Hold the transaction open while others insert and commit after it.
                                        for try await _ in try await tx.connection.query("SELECT pg_sleep(\(Double.random(in: 0...0.04)))", logger: testLogger)
                                        {}
                                        if rollback { throw CancellationError() }
                                        return result.positions[0].globalPosition
                                    }
                                    commitOrder.withLock { $0.append(first) }
                                    committed.withLock { $0 += events.map(\.id) }
                                } catch is CancellationError where rollback {
                                    rolledBack.withLock { $0.formUnion(events.map(\.id)) }
                                }
                            }
                        }
                    }
                    try await writers.waitForAll()
                }
                let expected = committed.withLock { $0.count }
                // Wait for the follower to reach the head (it must not stall behind a finished gap).
                let reached = await withTaskGroup(of: Bool.self) { race in
                    race.addTask {
                        for await count in progress where count >= expected { return true }
                        return false
                    }
                    race.addTask {
                        try? await Task.sleep(for: .seconds(20))
                        return false
                    }
                    defer { race.cancelAll() }
                    return await race.next() ?? false
                }
                #expect(reached, "the follower reached the head once the writers finished")
                group.cancelAll()
            }

            let events = seen.withLock { $0 }
            let ids = events.map(\.id)
            #expect(Set(ids).count == ids.count, "no event handed out twice")
            let expected = Set(committed.withLock { $0 })
            let missed = expected.subtracting(ids), extra = Set(ids).subtracting(expected)
            #expect(missed.isEmpty, "\(missed.count) of \(expected.count) committed events were never handed out")
            #expect(extra.isEmpty, "\(extra.count) events handed out that were never committed")
            #expect(rolledBack.withLock { $0 }.isDisjoint(with: ids))
            #expect(events.map(\.position) == events.map(\.position).sorted(), "in log order")
            let order = commitOrder.withLock { $0 }
            let lateCommits = zip(order, order.dropFirst()).filter { $0 > $1 }.count
            #expect(lateCommits > 0, "the run had transactions commit out of position order")
        }
    }

    @Test(arguments: AppendPath.allCases) func aConnectionKilledDuringAnAppendWritesAllOrNothing(path: AppendPath) async throws {
        try await withEventStore(path) { store, client in
            let events = try deposits(5)
            let table = "\(store.configuration.schema).events"
            try await client.withConnection { blocker in
                // Hold a lock that makes the append wait, so it can be killed mid-statement.
                try await blocker.query("BEGIN", logger: testLogger)
                try await blocker.query(PostgresQuery(unsafeSQL: "LOCK TABLE \(table) IN SHARE ROW EXCLUSIVE MODE"), logger: testLogger)
                let append = Task { try await store.append(events, to: "account-1", expectedVersion: .noStream) }
                var pid: Int32?
                let deadline = ContinuousClock.now + .seconds(10)
                while pid == nil && ContinuousClock.now < deadline {
                    for try await found in try await client.query(
                        """
                        SELECT pid FROM pg_stat_activity
                        WHERE wait_event_type = 'Lock' AND (query LIKE '%append_events%' OR query LIKE '%INSERT INTO%')
                          AND query LIKE \("%\(store.configuration.schema)%")
                        """, logger: testLogger
                    ).decode(Int32.self) { pid = found }
                    if pid == nil { try await Task.sleep(for: .milliseconds(5)) }
                }
                let victim = try #require(pid, "the append never reached the database")
                for try await _ in try await client.query("SELECT pg_terminate_backend(\(victim))", logger: testLogger) {}
                let error = await #expect(throws: EventStoreError.self) { try await append.value }
                #expect(error?.code == .connectionLost)
                try await blocker.query("ROLLBACK", logger: testLogger)
            }
            #expect(try await scalar("SELECT count(*) FROM \(unescaped: table)", on: client) == 0)
            // Re-sending is safe: it writes the events once. (The pool may hand out the killed
            // connection once more before it notices; a client re-sends on connectionLost, as here.)
            var first: AppendResult?
            for _ in 0..<3 where first == nil {
                do {
                    first = try await store.append(events, to: "account-1", expectedVersion: .noStream)
                } catch let error as EventStoreError where error.code == .connectionLost {
                    continue
                }
            }
            #expect(first?.streamVersion == 5)
            #expect(try await store.append(events, to: "account-1", expectedVersion: .noStream).wasAlreadyAppended)
            #expect(try await scalar("SELECT count(*) FROM \(unescaped: table)", on: client) == 5)
        }
    }

    /// postgres-nio 1.33 never answers a statement written to a connection whose close has completed
    /// (and its pool can hand one out); the store fails it with `.connectionLost` instead.
    /// Prepared appends, and appends through the log's functions.
    @Test(arguments: [true, false]) func anAppendOnAConnectionThatHasClosedFailsInsteadOfHanging(prepared: Bool) async throws {
        try await withEventStore(prepared ? .prepared : .functions) { store, client in
            let events = try deposits(2)
            let inner = Locked<(any Error)?>(nil)
            let ended = Locked<Result<Void, any Error>?>(nil)
            // Unstructured, so that a hang fails the test (below) instead of hanging it.
            Task {
                do {
                    try await store.withTransaction { tx in
                        var pid: Int32 = 0
                        for try await found in try await tx.connection.query("SELECT pg_backend_pid()", logger: testLogger).decode(Int32.self) { pid = found }
                        for try await _ in try await client.query("SELECT pg_terminate_backend(\(pid))", logger: testLogger) {}
                        try await tx.connection.closeFuture.get()
                        do {
                            _ = try await tx.append(events, to: "account-1", expectedVersion: .noStream)
                        } catch {
                            inner.withLock { $0 = error }
                            throw error
                        }
                    }
                    ended.withLock { $0 = .success(()) }
                } catch {
                    ended.withLock { $0 = .failure(error) }
                }
            }
            try await eventually("the transaction on a closed connection ended", timeout: .seconds(20)) { ended.withLock { $0 != nil } }
            let error = try #require(inner.withLock { $0 } as? EventStoreError)
            #expect(error.code == .connectionLost)
            #expect(ended.withLock { (try? $0?.get()) == nil }, "the transaction did not commit")
            #expect(try await scalar("SELECT count(*) FROM \(unescaped: "\(store.configuration.schema).events")", on: client) == 0)
        }
    }

    @Test func aggregateRoundTripOnPostgreSQL() async throws {
        try await withEventStore { store, _ in
            let handler = CommandHandler(decider: accountDecider, registry: AccountEvent.registry, store: store, logger: testLogger)
            let spec = CommandHandlerSpecification(handler)
            try await spec.given([.opened(.init(owner: "ada")), .deposited(.init(cents: 100))], on: "account-1")
                .when(.withdraw(cents: 30)).then([.withdrawn(.init(cents: 30))])
            try await spec.given([.opened(.init(owner: "bob"))], on: "account-2")
                .when(.withdraw(cents: 30)).thenThrows(AccountError.insufficientFunds(balance: 0))
            try await spec.given([], on: "account-3").when(.deposit(cents: 1)).thenThrows(AccountError.notOpen)
            #expect(try await handler.load("account-1").state == .open(balance: 70))
        }
    }
}
