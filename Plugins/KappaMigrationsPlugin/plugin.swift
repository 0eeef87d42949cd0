import Foundation
import PackagePlugin

/// Embeds the package's `Migrations/*/*.sql` files into the target as Swift string literals,
/// so an application linking `KappaPostgres` carries its schema without a resource bundle.
@main
struct KappaMigrationsPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        // Migrations/<set>/NNNN_name.sql: one set per schema the framework manages (log, projections).
        let root = context.package.directoryURL.appending(path: "Migrations")
        let fileManager = FileManager.default
        let files = try fileManager.contentsOfDirectory(at: root, includingPropertiesForKeys: nil)
            .filter { (try? $0.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true }
            .flatMap { try fileManager.contentsOfDirectory(at: $0, includingPropertiesForKeys: nil) }
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.path < $1.path }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedMigrations.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(files.count) migration(s) from Migrations/",
                executable: try context.tool(named: "KappaSQLEmbedder").url,
                arguments: [output.path] + files.map(\.path),
                inputFiles: files,
                outputFiles: [output]
            )
        ]
    }
}
