import KappaTesting
import NIOCore
import NIOPosix
import Synchronization

/// A relay on loopback to a PostgreSQL server that counts round trips: a client's bytes that follow
/// the server's (or come first) begin a new one. A client that sends a whole transaction before it
/// reads anything makes one round trip of it, however the bytes are split into packets.
final class RoundTripCounter: Sendable {
    private let server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
    private let target: (host: String, port: Int)
    /// Whether the last bytes relayed were the client's, and the round trips counted.
    private let state = Mutex<(clientSpokeLast: Bool, roundTrips: Int)>((false, 0))

    var port: Int { server.channel.localAddress?.port ?? 0 }

    var roundTrips: Int { state.withLock { $0.roundTrips } }

    private init(server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>, target: (host: String, port: Int)) {
        self.server = server
        self.target = target
    }

    /// Runs `body` with a relay to `host`:`port`; the relay closes afterwards.
    static func with<R: Sendable>(host: String, port: Int, _ body: (RoundTripCounter) async throws -> R) async throws -> R {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let counter = RoundTripCounter(server: server, target: (host, port))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await withThrowingDiscardingTaskGroup { relays in
                    try await server.executeThenClose { connections in
                        for try await connection in connections { relays.addTask { await counter.relay(connection) } }
                    }
                }
            }
            defer { group.cancelAll() }
            let result = try await body(counter)
            try? await server.channel.close()
            return result
        }
    }

    /// Runs `body` with a relay to the tests' server (``TestDatabase/configuration(environment:)``).
    static func withTestDatabase<R: Sendable>(_ body: (RoundTripCounter) async throws -> R) async throws -> R {
        let server = TestDatabase.configuration()
        return try await with(host: server.host ?? "localhost", port: server.port ?? 5432, body)
    }

    /// A libpq connection string to the tests' server through this relay.
    var connectionString: String {
        let server = TestDatabase.configuration()
        return TestDatabase.connectionString(
            for: .init(host: "127.0.0.1", port: port, username: server.username, password: server.password, database: server.database, tls: .disable))
    }

    /// Counts from zero again.
    func reset() { state.withLock { $0 = (false, 0) } }

    /// Cuts still to make: a client's bytes that hold a `COMMIT` are relayed, then both connections
    /// closed before any answer, so that the client never learns whether its transaction committed.
    private let cuts = Mutex(0)

    /// Cuts the next `count` connections that send a `COMMIT`, right after relaying it.
    func cutAfterCommit(_ count: Int) { cuts.withLock { $0 = count } }

    /// Cuts not yet made.
    var cutsLeft: Int { cuts.withLock { $0 } }

    private struct Cut: Error {}

    private func relay(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        do {
            let upstream = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: target.host, port: target.port) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
            try await client.executeThenClose { fromClient, toClient in
                try await upstream.executeThenClose { fromServer, toServer in
                    try await withThrowingTaskGroup(of: Void.self) { pair in
                        pair.addTask {
                            for try await bytes in fromClient {
                                self.state.withLock { state in
                                    if !state.clientSpokeLast { state.roundTrips += 1 }
                                    state.clientSpokeLast = true
                                }
                                try await toServer.write(bytes)
                                if bytes.readableBytesView.firstRange(of: Array("COMMIT".utf8)) != nil,
                                    self.cuts.withLock({ cuts in
                                        guard cuts > 0 else { return false }
                                        cuts -= 1
                                        return true
                                    })
                                {
                                    throw Cut()
                                }
                            }
                        }
                        pair.addTask {
                            for try await bytes in fromServer {
                                self.state.withLock { $0.clientSpokeLast = false }
                                try await toClient.write(bytes)
                            }
                        }
                        try await pair.next()
                        pair.cancelAll()
                    }
                }
            }
        } catch {
            try? await client.channel.close()
        }
    }
}
