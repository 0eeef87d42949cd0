import ArgumentParser
import Foundation

/// The Python `eventsourcing` library (9.5, psycopg 3) run on the same workload and the same server
/// (`Benchmarks/peer/eventsourcing_peer.py`), so that a benchmark prints the peer's figure beside its own.
///
/// The interpreter is `KAPPA_BENCH_PEER_PYTHON` (default `python3`); `scripts/bench … --peer` makes a
/// virtual environment with the library and sets it.
enum PeerBaseline {
    static let script = "Benchmarks/peer/eventsourcing_peer.py"

    /// Runs the peer's `mode` with `arguments`; returns the figures it printed on its last line.
    static func run(_ mode: String, _ arguments: [String: Int]) throws -> [String: Double] {
        guard FileManager.default.fileExists(atPath: script) else {
            throw ValidationError("--peer: \(script) not found; run kappa-bench from the repository's root")
        }
        let python = ProcessInfo.processInfo.environment["KAPPA_BENCH_PEER_PYTHON"] ?? "python3"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, script, mode] + arguments.sorted { $0.key < $1.key }.flatMap { ["--\($0.key)", String($0.value)] }
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let last = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        guard process.terminationStatus == 0,
            let figures = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Double]
        else {
            throw ValidationError("--peer: \(python) \(script) \(mode) exited with \(process.terminationStatus) (its error is above)")
        }
        return figures
    }
}
