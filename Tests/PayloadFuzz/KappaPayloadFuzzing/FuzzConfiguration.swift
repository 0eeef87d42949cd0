/// What to fuzz: a seed and a run of iterations, each reproducible alone from the two. Read from the
/// environment: `KAPPA_FUZZ_SEED` (decimal or `0x` hex), `KAPPA_FUZZ_ITERATIONS`, `KAPPA_FUZZ_FIRST`
/// (the first iteration's number, to repeat one), `KAPPA_FUZZ_TRACE=1` (each iteration's number on
/// standard error before it runs, so that a crash names its iteration).
package struct FuzzConfiguration: Sendable {
    package var seed: UInt64
    package var iterations: Int
    package var first = 0
    package var trace = false

    package init(seed: UInt64, iterations: Int, first: Int = 0, trace: Bool = false) {
        (self.seed, self.iterations, self.first, self.trace) = (seed, iterations, first, trace)
    }

    /// The environment's settings, else `defaultIterations` and `defaultSeed` (nil: a random seed).
    package static func fromEnvironment(
        _ environment: [String: String], defaultIterations: Int,
        defaultSeed: UInt64?
    ) throws(Invalid) -> FuzzConfiguration {
        let seed: UInt64
        if let text = environment["KAPPA_FUZZ_SEED"], !text.isEmpty {
            let parsed = text.lowercased().hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
            guard let parsed else { throw Invalid(message: "KAPPA_FUZZ_SEED is not a number: \(text)") }
            seed = parsed
        } else {
            seed = defaultSeed ?? UInt64.random(in: 0...UInt64.max)
        }
        func count(_ name: String, _ fallback: Int) throws(Invalid) -> Int {
            guard let text = environment[name], !text.isEmpty else { return fallback }
            guard let value = Int(text.replacingOccurrences(of: "_", with: "")), value >= 0 else {
                throw Invalid(message: "\(name) is not a count: \(text)")
            }
            return value
        }
        return FuzzConfiguration(
            seed: seed, iterations: try count("KAPPA_FUZZ_ITERATIONS", defaultIterations),
            first: try count("KAPPA_FUZZ_FIRST", 0), trace: environment["KAPPA_FUZZ_TRACE"] == "1")
    }

    package struct Invalid: Error, CustomStringConvertible {
        package var message: String
        package var description: String { message }
    }

    /// The seed as the environment takes it.
    package var seedText: String { "0x" + String(seed, radix: 16) }
}
