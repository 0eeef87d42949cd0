import ArgumentParser

@main
struct KappaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kappa-bench",
        abstract: "Kappa's benchmarks: each figure beside a baseline measured in the same run on the same server.",
        discussion: """
            Connects with the standard PostgreSQL variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE).
            Build in release mode; for durable figures run against a server with fsync=on:
              scripts/bench append
            """,
        subcommands: [AppendBenchmark.self]
    )
}
