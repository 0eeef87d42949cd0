import Foundation
import KappaTesting
import Synchronization
import Testing

@testable import KappaPostgres

/// The reactor calls a socket's handler when it is ready, and forgets a socket only for the
/// connection that owns it: a closed connection's socket number, given to a new connection, keeps
/// the new one's watch.
@Suite("libpq reactor")
struct LibPQReactorTests {
    final class Owner: Sendable {}

    @Test func aSocketIsForgottenOnlyForItsOwner() async throws {
        var ends: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer { ends.forEach { close($0) } }
        let (current, former) = (Owner(), Owner())
        let calls = Atomic<Int>(0)
        let reactor = LibPQReactor.shared
        /// Watches the first end for the current owner, counting the handler's calls.
        func watch() -> Bool {
            reactor.watch(ends[0], owner: ObjectIdentifier(current), for: .read) {
                calls.add(1, ordering: .relaxed)
                return nil
            }
        }
        #expect(watch())
        // The former owner of this number goes away: the current owner's watch stays.
        reactor.forget(ends[0], owner: ObjectIdentifier(former))
        #expect(write(ends[1], "x", 1) == 1)
        try await eventually("the handler ran") { calls.load(ordering: .relaxed) == 1 }
        // Its owner forgets it: nothing runs any more.
        var buffer: UInt8 = 0
        #expect(read(ends[0], &buffer, 1) == 1)
        #expect(watch())
        reactor.forget(ends[0], owner: ObjectIdentifier(current))
        #expect(write(ends[1], "y", 1) == 1)
        // A handler that must not run: given the time the first one took many times over.
        try await Task.sleep(for: .milliseconds(50))
        #expect(calls.load(ordering: .relaxed) == 1)
    }
}
