import ArgumentParser
import KappaPostgres

/// `projections promote NAME --version N`: points the stable names at a caught-up version.
struct PromoteCommand<Host: ProjectionCommandHost>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "promote",
            abstract: "Make a caught-up version serve the stable names; the active one is retired (and can be rolled back to).",
            discussion: "Refused for an unknown, building, failed, dropped or lagging version, and for one lower than the active version.")
    }

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The projection's name.") var name: String
    @Option(help: "The version to promote.") var version: Int
    @Option(help: "The most events the version may be behind the log (default 1000).") var maxLag: Int?

    func run() async throws {
        let (name, version, maxLag) = (self.name, self.version, self.maxLag)
        try await connection.withVersions(
            projections: Host.projections(),
            configure: { configuration in
                if let maxLag { configuration.maximumPromotionLag = maxLag }
            }
        ) { versions in
            try await versions.promote(name, version: version)
        }
        print("\(name) v\(version) is active: the stable names \(name).* point at \(name)_v\(version)")
    }
}
