import ArgumentParser
import KappaPostgres

/// `projections drop NAME --version N`: removes a retired version's schema.
struct DropCommand<Host: ProjectionCommandHost>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "drop",
            abstract: "Drop a retired version: its schema and rows go (it can be rebuilt from the log later).",
            discussion: "Refused for the active version and for versions that never served.")
    }

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The projection's name.") var name: String
    @Option(help: "The retired version to drop.") var version: Int

    func run() async throws {
        let (name, version) = (self.name, self.version)
        try await connection.withVersions(projections: Host.projections()) { versions in
            try await versions.drop(name, version: version)
        }
        print("\(name) v\(version) dropped")
    }
}
