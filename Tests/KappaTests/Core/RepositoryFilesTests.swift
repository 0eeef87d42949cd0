import Foundation
import KappaTesting
import Testing

@Suite("Repository files")
struct RepositoryFilesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// docker-compose.yml cannot run here (no Docker engine); check that it parses as the YAML subset
    /// it is written in and that its PostgreSQL matches what the tools connect to by default.
    @Test func dockerComposeMatchesTheDefaults() throws {
        let text = try String(contentsOf: Self.root.appending(path: "docker-compose.yml"), encoding: .utf8)
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).hasPrefix("#") {
            #expect(!line.contains("\t"), "YAML forbids tabs: \(line)")
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        #expect(values["image"] == "postgres:15")
        let defaults = TestDatabase.configuration(environment: [:])
        #expect(values["POSTGRES_USER"] == defaults.username)
        #expect(text.contains("\"127.0.0.1:\(defaults.port ?? 0):5432\""))
        #expect(values["POSTGRES_PASSWORD"] == "kappa" && text.contains("PGPASSWORD=kappa"))
    }

    @Test func ciRunsTheReadmeTestCommand() throws {
        let ci = try String(contentsOf: Self.root.appending(path: ".ci/run"), encoding: .utf8)
        let readme = try String(contentsOf: Self.root.appending(path: "README.md"), encoding: .utf8)
        #expect(ci.contains("scripts/test"))
        #expect(readme.contains("scripts/test "))
    }
}
