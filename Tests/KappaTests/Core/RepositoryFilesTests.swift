import Foundation
import KappaTesting
import Testing

@Suite("Repository files")
struct RepositoryFilesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The framework's package builds no web framework and no sample: an application that depends
    /// on Kappa gets the framework only. The sample is a package of its own that depends on it by path.
    @Test func theFrameworksPackageLeavesTheSampleToItsOwnPackage() throws {
        let manifest = try String(contentsOf: Self.root.appending(path: "Package.swift"), encoding: .utf8)
        for name in ["hummingbird", "openapi", "async-http-client", #"path: "SampleApp"#, "CartApp"] {
            #expect(!manifest.contains(name), "Package.swift names \(name)")
        }
        let sample = try String(contentsOf: Self.root.appending(path: "SampleApp/Package.swift"), encoding: .utf8)
        #expect(sample.contains(#".package(name: "Kappa", path: "..")"#))
        #expect(sample.contains(#".plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")"#))
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

    /// The soak's report names each test that failed in any run, how often and with its first issue,
    /// and a run that failed with no failed test (a crash, the time limit); it fails when any run did.
    @Test func theSoakReportNamesFlakyTestsAndCrashedRuns() throws {
        let dir = FileManager.default.temporaryDirectory.appending(path: "kappa-soak-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let runs: [(log: String, status: Int)] = [
            ("✔ Test aTest() passed after 0.1 seconds.\n✔ Test run with 2 tests passed after 1 seconds.\n", 0),
            ("✘ Test aFlakyTest() recorded an issue at X.swift:3:5: Caught error: closed\n✘ Test aFlakyTest() failed after 1 seconds with 1 issue.\n", 1),
            ("◇ Test aHangingTest() started.\n", 124),
            ("✘ Test aFlakyTest() recorded an issue at X.swift:9:1: Expectation failed\n", 1),
        ]
        for (index, run) in runs.enumerated() {
            try run.log.write(to: dir.appending(path: "run-\(index + 1).log"), atomically: true, encoding: .utf8)
            try "\(run.status)\n".write(to: dir.appending(path: "run-\(index + 1).status"), atomically: true, encoding: .utf8)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [
            "-c", "source \"$0/summary.sh\"; source \"$0/soak.sh\"; kappa_soak_report \"$1\" 4 none 2>&1",
            Self.root.appending(path: "scripts/lib").path, dir.path,
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(text.contains("FLAKY aFlakyTest() failed in 2 of 4 runs (runs 2, 4)"), "\(text)")
        #expect(text.contains("first issue: X.swift:3:5: Caught error: closed"))
        #expect(text.contains("run 3 exited with 124"))
        #expect(text.contains("aHangingTest()"))
        #expect(!text.contains("aTest()"))
        #expect(text.contains("soak: 1 passed, 3 failed"))
    }

    /// The stress run's busy loops end with the soak, also when they were started inside a function
    /// and the shell exits without stopping them.
    @Test func theStressLoopsEndWhenTheShellExits() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [
            "-c", "source \"$0/soak.sh\"; start() { kappa_stress_start; }; start; echo \"${KAPPA_HOGS[*]}\"",
            Self.root.appending(path: "scripts/lib").path,
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let pids = text.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
        #expect(pids.count == ProcessInfo.processInfo.activeProcessorCount, "\(text)")
        for pid in pids {
            // Killed and reaped by the exiting shell: no such process any more.
            #expect(kill(pid, 0) == -1 && errno == ESRCH, "busy loop \(pid) outlived its shell")
        }
        // A soak without --stress stops no loops, under the test script's `set -u` too.
        let plain = Process()
        plain.executableURL = URL(fileURLWithPath: "/bin/bash")
        plain.arguments = ["-c", "set -euo pipefail; source \"$0/soak.sh\"; kappa_stress_stop", Self.root.appending(path: "scripts/lib").path]
        try plain.run()
        plain.waitUntilExit()
        #expect(plain.terminationStatus == 0)
    }
}
