import ArgumentParser
import Foundation
import KappaCLI
import KappaFixtures
import KappaPostgres

/// An application that embeds the `projections` and `log` commands, for the CLI tests. Its projections are
/// the cart read model v1 and v2 named by KAPPA_FIXTURE_PROJECTION (default cart_summary).
enum FixtureHost: ProjectionCommandHost {
    static func projections() -> [any Projection] {
        let name = ProcessInfo.processInfo.environment["KAPPA_FIXTURE_PROJECTION"] ?? "cart_summary"
        return [CartSummaryProjection(name: name), CartSummaryV2Projection(name: name)]
    }
}

@main
struct FixtureCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kappa-fixture-cli", abstract: "A host application for the projections and log commands.",
        subcommands: [ProjectionsCommand<FixtureHost>.self, LogCommand.self])
}
