import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

@main
struct KappaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kappa-bench",
        abstract: "Kappa's benchmarks: each figure beside a baseline measured in the same run on the same server.",
        discussion: """
            Connects with the standard PostgreSQL variables (PGHOST, PGPORT, PGUSER, \
            PGPASSWORD, PGDATABASE). Build in release mode; for durable figures run \
            against a server with fsync=on:
              scripts/bench append
            """,
        subcommands: [
            AppendBenchmark.self, AppendChainBenchmark.self, CatchUpBenchmark.self, LiveBenchmark.self, RebuildBenchmark.self, JSONBenchmark.self,
            DriverBenchmark.self, EventIDBenchmark.self, FleetBenchmark.self, FleetWorker.self, PartitionedLogBenchmark.self,
        ]
    )

    /// With `KAPPA_BENCH_NIO_EXECUTOR=1`, Swift concurrency's jobs run on NIO's event loops (no
    /// thread hop between a task and its connection's I/O), before anything else runs.
    static func main() async {
        if ProcessInfo.processInfo.environment["KAPPA_BENCH_NIO_EXECUTOR"] == "1" {
            emit(
                "concurrency: NIO's event loops as the global executor: \(NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor())"
            )
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Prints a line at once (unbuffered), so figures appear as they are measured, also into a file.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
