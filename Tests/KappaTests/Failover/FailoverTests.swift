import Foundation
import Kappa
import KappaFixtures
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

/// The log's server is a pg_auto_failover formation (`scripts/formation`: a monitor, a primary and a
/// synchronous standby, on loopback), reached through a ``PrimaryRouter``. Its primary machine is lost
/// (keeper and postmaster SIGKILLed) while writers append and a projection follows; the standby is
/// promoted, and nothing acknowledged is lost, nothing is half-written, and the read model is exact.
@Suite("The log's server fails over", .serialized)
struct FailoverTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Runs `scripts/formation` with `arguments`; the last line it printed.
    @discardableResult
    static func formation(_ arguments: String...) async throws -> String {
        let process = Process()
        process.executableURL = repository.appending(path: "scripts/formation")
        process.arguments = arguments
        // A file, not a pipe: the formation's processes outlive the script.
        let output = FileManager.default.temporaryDirectory.appending(path: "formation-\(UUID().uuidString).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        let exit = ChildExit(of: process)
        try process.run()
        // At most two minutes (a formation starts in 10-30 s here).
        let finished = await exit.wait(atMost: .seconds(120))
        if !finished { kill(process.processIdentifier, SIGKILL) }
        try handle.close()
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        if finished && process.terminationStatus == 0 {
            return text.split(separator: "\n").last.map(String.init) ?? ""
        }
        throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "scripts/formation \(arguments) failed: \(text)"])
    }

    /// One append of a writer: its stream and event ids, and whether the store acknowledged it.
    struct Attempt: Sendable {
        var stream: String
        var ids: [UUID]
        var acknowledged: Bool
    }

    @Test func appendsAndAProjectionGoOnAcrossAFailoverAndLoseNothing() async throws {
        let directory = "/tmp/kappa-formation-\(UUID().uuidString.prefix(8).lowercased())"
        // Ports below the ephemeral range (32768 on), where outgoing connections could hold one;
        // another try on other ports if one is taken anyway.
        var port = 0
        for attempt in 1...3 {
            port = Int.random(in: 15_000...32_000)
            do {
                try await Self.formation("start", directory, "\(port)")
                break
            } catch  where attempt < 3 {
                testLogger.notice("the formation did not start; trying other ports", metadata: ["error": "\(error)"])
                _ = try? await Self.formation("stop", directory)
            }
        }
        do {
            try await run(directory: directory, port: port)
        } catch {
            _ = try? await Self.formation("stop", directory)
            throw error
        }
        _ = try? await Self.formation("stop", directory)
    }

    func run(directory: String, port: Int) async throws {
        let router = try await PrimaryRouter.start(
            hosts: [.init(host: "127.0.0.1", port: port + 1), .init(host: "127.0.0.1", port: port + 2)],
            username: "postgres", password: nil, database: "postgres", logger: testLogger)
        var direct = PostgresClient.Configuration(host: "127.0.0.1", port: port + 1, username: "postgres", password: nil, database: "postgres", tls: .disable)
        direct.options.maximumConnections = 20
        let client = PostgresClient(configuration: router.clientConfiguration(direct), backgroundLogger: testLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            group.addTask { try await router.run() }
            defer { group.cancelAll() }
            let schema = "kappa_failover"
            let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: testLogger)
            try await store.migrate()
            var configuration = ProjectionRuntime.Configuration()
            configuration.schema = "kappa_failover_rt"
            configuration.leaseDuration = .seconds(2)
            configuration.idlePollInterval = .milliseconds(50)
            let projection = CartSummaryProjection(name: "failover_carts")
            let runtime = try ProjectionRuntime(log: store, readModels: client, projections: [projection], configuration: configuration, logger: testLogger)
            let following = Task { try await runtime.run() }
            defer { following.cancel() }

            // Four writers, each appending three events to a new cart at a time and sending the same
            // events again (same ids) until they are acknowledged.
            let attempts = Locked<[Attempt]>([]), stopWriting = Locked(false), failures = Locked(0)
            let writers = Task {
                try await withThrowingTaskGroup(of: Void.self) { writers in
                    for writer in 0..<4 {
                        writers.addTask {
                            for n in 0... {
                                if stopWriting.withLock({ $0 }) { return }
                                let cart = writer * 100_000 + n, stream = "cart-\(cart)"
                                let events = [CartEvents.added(cart: cart), CartEvents.added(cart: cart, sku: "SKU-2"), CartEvents.checkedOut(cart: cart)]
                                let index = attempts.withLock { list in
                                    list.append(Attempt(stream: stream, ids: events.map(\.id), acknowledged: false))
                                    return list.count - 1
                                }
                                while true {
                                    do {
                                        _ = try await store.append(events, to: StreamID(stream), expectedVersion: .noStream)
                                        attempts.withLock { $0[index].acknowledged = true }
                                        break
                                    } catch {
                                        failures.withLock { $0 += 1 }
                                        if stopWriting.withLock({ $0 }) { return }
                                        try await Task.sleep(for: .milliseconds(100))
                                    }
                                }
                            }
                        }
                    }
                    try await writers.waitForAll()
                }
            }
            @Sendable func acknowledged() -> Int { attempts.withLock { $0.filter(\.acknowledged).count } }
            try await eventually("appends before the failover", timeout: .seconds(60)) { acknowledged() >= 100 }
            // The projection is set up and following before the primary is lost.
            let before = try await store.head()
            try await runtime.waitUntil(projection.name, hasPassed: before, timeout: .seconds(60))
            let killed = try await Self.formation("kill-primary", directory).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(killed == "node1")
            let atKill = acknowledged()
            try await eventually("appends go on after the failover", timeout: .seconds(90)) { acknowledged() >= atKill + 100 }
            stopWriting.withLock { $0 = true }
            try await writers.value
            #expect(failures.withLock { $0 } > 0, "some appends met the failover")

            // Every acknowledged append is in the log once; every other one wholly or not at all.
            let all = attempts.withLock { $0 }
            var stored: [UUID: Int64] = [:]
            for try await (id, count) in try await client.query(
                "SELECT event_id, count(*) FROM kappa_failover.events GROUP BY event_id", logger: testLogger
            ).decode((UUID, Int64).self) {
                stored[id] = count
            }
            #expect(stored.values.allSatisfy { $0 == 1 })
            for attempt in all {
                let present = attempt.ids.filter { stored[$0] != nil }.count
                if attempt.acknowledged {
                    #expect(present == 3, "acknowledged append to \(attempt.stream) lost")
                } else {
                    #expect(present == 0 || present == 3, "append to \(attempt.stream) half-written")
                }
            }
            // The projection followed the new primary: equal to the log folded in SQL.
            let head = try await store.head()
            try await runtime.waitUntil(projection.name, hasPassed: head, timeout: .seconds(60))
            let differing = try await scalar(
                """
                WITH folded AS (
                    SELECT payload->>'cartId' AS cart_id, count(*) AS events FROM kappa_failover.events GROUP BY 1)
                SELECT count(*) FROM ((SELECT cart_id, events FROM folded EXCEPT ALL SELECT cart_id, events FROM failover_carts_v1.carts)
                                UNION ALL (SELECT cart_id, events FROM failover_carts_v1.carts EXCEPT ALL SELECT cart_id, events FROM folded)) d
                """, on: client)
            #expect(differing == 0)
            following.cancel()
            _ = await following.result
        }
    }
}
