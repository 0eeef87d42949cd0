import Foundation
import KappaPayloadFuzzing
import Testing

/// The fuzz loop (``PayloadFuzzer``) in the test run: a fixed seed by default, so that every run
/// checks the same documents; `KAPPA_FUZZ_SEED`, `KAPPA_FUZZ_ITERATIONS` and `KAPPA_FUZZ_FIRST`
/// choose others. scripts/test runs it again under AddressSanitizer with a new seed each time
/// (`kappa-payload-fuzz`).
@Suite("PayloadDecoder: fuzzed against JSONDecoder")
struct PayloadFuzzTests {
    static let defaultSeed: UInt64 = 0x4B41_5050_4A53_4F4E

    @Test func randomAndMutatedDocuments() throws {
        let configuration = try FuzzConfiguration.fromEnvironment(
            ProcessInfo.processInfo.environment, defaultIterations: 2_000,
            defaultSeed: Self.defaultSeed)
        var fuzzer = PayloadFuzzer(configuration)
        do {
            try fuzzer.run()
        } catch {
            Issue.record("\(error)")
        }
        // The valid documents must mostly be valid, or the fuzzer checks little but errors.
        #expect(fuzzer.report.validRefused * 20 <= fuzzer.report.valid, "seed \(configuration.seedText): \(fuzzer.report.summary)")
    }
}
