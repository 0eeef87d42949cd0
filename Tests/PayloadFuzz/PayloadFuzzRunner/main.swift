import Foundation
import KappaPayloadFuzzing

// kappa-payload-fuzz: the payload decoder's fuzz loop (see PayloadFuzzer) as a process, so that
// scripts/test can build it alone with AddressSanitizer. Settings from the environment (see
// FuzzConfiguration); without KAPPA_FUZZ_SEED a random seed, printed. Exits 1 at the first mismatch,
// naming the seed, the iteration and the document; 2 for bad settings.
let configuration: FuzzConfiguration
do {
    configuration = try FuzzConfiguration.fromEnvironment(ProcessInfo.processInfo.environment, defaultIterations: 20_000, defaultSeed: nil)
} catch {
    FileHandle.standardError.write(Data("kappa-payload-fuzz: \(error)\n".utf8))
    exit(2)
}
print("kappa-payload-fuzz: seed \(configuration.seedText), iterations \(configuration.first)..<\(configuration.first + configuration.iterations)")
var fuzzer = PayloadFuzzer(configuration)
do {
    try fuzzer.run()
    print("kappa-payload-fuzz: no mismatch: \(fuzzer.report.summary)")
} catch {
    print("kappa-payload-fuzz: \(error)")
    exit(1)
}
