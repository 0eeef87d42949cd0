import ArgumentParser
import Foundation
import KappaPostgres

/// `projections status [NAME]`: every version of every projection (or of NAME), where it stands.
struct StatusCommand<Host: ProjectionCommandHost>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "status", abstract: "List projection versions: lifecycle, state, checkpoint, lag, lease holder.")
    }

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Only this projection.") var name: String?

    func run() async throws {
        let name = self.name
        let lines = try await connection.withVersions(projections: Host.projections()) { versions in
            var rows: [[String]] = [["NAME", "VERSION", "LIFECYCLE", "STATE", "CHECKPOINT", "APPLIED", "LAG", "HELD BY"]]
            let names = if let name { [name] } else { try await versions.names() }
            for projection in names {
                for version in try await versions.versions(of: projection) {
                    let lag = version.lifecycle == .dropped ? "-" : String(try await versions.lag(of: version))
                    rows.append([
                        projection, "\(version.version)", "\(version.lifecycle)", version.state.rawValue, "\(version.checkpoint)",
                        "\(version.eventsApplied)", lag, version.leaseOwner ?? "-",
                    ])
                }
            }
            return rows
        }
        if lines.count == 1 {
            print(name.map { "no versions of \($0) are registered" } ?? "no projections are registered")
            return
        }
        let widths = lines[0].indices.map { column in lines.map { $0[column].count }.max() ?? 0 }
        for line in lines {
            print(zip(line, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
    }
}
