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

    /// A failed run's summary names the failed tests' issues and the tests that never finished: what a
    /// run killed by its time limit (a hang) has to show at the end of CI's output.
    @Test func aFailedRunsSummaryNamesTheHungAndFailedTests() throws {
        let log = FileManager.default.temporaryDirectory.appending(path: "kappa-summary-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: log) }
        try """
            ◇ Test run started.
            ◇ Suite "Projection runtime" started.
            ◇ Test aHangingTest() started.
            ◇ Test aFailingTest() started.
            ◇ Test aParameterizedTest(path:) started.
            ◇ Test case passing 1 argument path → .plain to aParameterizedTest(path:) started.
            ◇ Test aPassingTest() started.
            ✔ Test aPassingTest() passed after 0.1 seconds.
            ✘ Test aFailingTest() recorded an issue at X.swift:3:5: Expectation failed: 1 == 2
            ✘ Test aFailingTest() failed after 0.2 seconds with 1 issue.
            ✔ Test aParameterizedTest(path:) with 1 test case passed after 0.3 seconds.

            """.write(to: log, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "source \"$0\"; kappa_test_summary \"$1\"", Self.root.appending(path: "scripts/lib/summary.sh").path, log.path]
        let output = Pipe()
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(text.contains("✘ Test aFailingTest() recorded an issue at X.swift:3:5"))
        let unfinished = text.components(separatedBy: "never finished").last ?? ""
        #expect(unfinished.contains("aHangingTest()"))
        for finished in ["aPassingTest()", "aFailingTest()", "aParameterizedTest(path:)", "case passing"] {
            #expect(!unfinished.contains(finished), "\(finished) finished")
        }
    }
}
