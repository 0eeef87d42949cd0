import ArgumentParser
import KappaPostgres

/// `projections rollback NAME`: back to the previous (retired) version.
struct RollbackCommand<Host: ProjectionCommandHost>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "rollback",
            abstract: "Point the stable names back at the highest retired version below the active one.")
    }

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The projection's name.") var name: String

    func run() async throws {
        let name = self.name
        let version = try await connection.withVersions(projections: Host.projections()) { versions in
            try await versions.rollback(name)
        }
        print("\(name) rolled back: v\(version) is active again")
    }
}
