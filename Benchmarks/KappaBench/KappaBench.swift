import ArgumentParser
import Foundation

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
}

/// Prints a line at once (unbuffered), so figures appear as they are measured, also into a file.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
