import ArgumentParser
import Foundation
import Kappa

/// The client's cost of an event id: Foundation's `UUID()` (version 4, random bytes from the system
/// on every call) beside ``EventIDGenerator`` (UUIDv7, the command handler's default), in one run.
struct EventIDBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ids", abstract: "ns per event id: UUID() beside EventIDGenerator (UUIDv7).")

    @Option(help: "Ids made per figure.")
    var count = 2_000_000

    func run() async throws {
        let generator = EventIDGenerator.shared
        for round in 1...3 {
            let v4 = nanoseconds { UUID() }
            let v7 = nanoseconds { generator.next() }
            emit(String(format: "ids, round %d: UUID() %.0f ns an id, EventIDGenerator %.0f ns (%.1fx)", round, v4, v7, v4 / v7))
        }
    }

    private func nanoseconds(_ make: () -> UUID) -> Double {
        var sink: UInt8 = 0
        let elapsed = ContinuousClock().measure {
            for _ in 0..<count { sink ^= make().uuid.15 }
        }
        if sink == 42 { emit("") } // keeps the ids from being optimised away
        return (Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9) / Double(count)
    }
}
