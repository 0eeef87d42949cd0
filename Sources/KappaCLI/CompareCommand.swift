import ArgumentParser
import KappaPostgres

/// `projections compare NAME --old 1 --new 2`: the two versions over the same log range, table by table.
struct CompareCommand<Host: ProjectionCommandHost>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "compare",
            abstract: "Compare two versions over the same stretch of the log, on the tables and columns they share.",
            discussion: "Exit status 0 when they agree, 3 when rows differ (expected when the new version changes meaning).")
    }

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The projection's name.") var name: String
    @Option(help: "The serving (older) version.") var old: Int
    @Option(help: "The new version.") var new: Int
    @Option(name: .customLong("ignore"), parsing: .upToNextOption, help: "Columns to leave out (timestamps, writer names).")
    var ignored: [String] = []

    func run() async throws {
        let (name, old, new, ignored) = (self.name, self.old, self.new, Set(self.ignored))
        let comparison = try await connection.withVersions(projections: Host.projections()) { versions in
            try await versions.compare(name, old: old, new: new, ignoring: ignored)
        }
        print(
            "\(name): v\(old) at \(comparison.oldCheckpoint), v\(new) at \(comparison.newCheckpoint)"
                + (comparison.samePosition ? "" : " (not at the same position: the figures below may differ for that reason)"))
        for table in comparison.tables {
            var line = "  \(table.name): \(table.rowsInOld) rows in v\(old), \(table.rowsInNew) in v\(new); "
            line +=
                table.isEqual
                ? "equal on \(table.comparedColumns.count) shared columns"
                : "\(table.rowsOnlyInOld) rows only in v\(old), \(table.rowsOnlyInNew) only in v\(new)"
            if !table.columnsOnlyInNew.isEmpty { line += "; new columns: \(table.columnsOnlyInNew.joined(separator: ", "))" }
            if !table.columnsOnlyInOld.isEmpty { line += "; removed columns: \(table.columnsOnlyInOld.joined(separator: ", "))" }
            print(line)
        }
        if !comparison.tablesOnlyInNew.isEmpty { print("  new tables: \(comparison.tablesOnlyInNew.joined(separator: ", "))") }
        if !comparison.tablesOnlyInOld.isEmpty { print("  removed tables: \(comparison.tablesOnlyInOld.joined(separator: ", "))") }
        print(comparison.isEqual ? "the versions agree" : "\(comparison.differingRows) rows differ")
        if !comparison.isEqual { throw ExitCode(3) }
    }
}
