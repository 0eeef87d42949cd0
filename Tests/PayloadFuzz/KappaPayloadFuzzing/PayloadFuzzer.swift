import Foundation
import KappaPayloadDecoding

/// The fuzz loop: each iteration makes a document (of a ``FuzzShapes`` type, or RandomJSON's),
/// checks that PayloadDecoder decodes it as JSONDecoder does, then breaks it in its bytes and in its
/// values (``Mutator``) and checks the broken ones the same way: the same value whenever either
/// decoder succeeds, both failing otherwise (with the same error where errors are comparable), and
/// no crash. Now and then a document is large or nested past the limit, and a decoder kept after
/// its decode must read its payload unchanged after other decodes.
package struct PayloadFuzzer {
    package let configuration: FuzzConfiguration
    package private(set) var report = FuzzReport()

    package init(_ configuration: FuzzConfiguration) {
        self.configuration = configuration
    }

    /// Runs the iterations; stops at the first mismatch.
    package mutating func run() throws(FuzzFailure) {
        let start = ContinuousClock.now
        defer { report.duration = ContinuousClock.now - start }
        for iteration in configuration.first..<configuration.first + configuration.iterations {
            if configuration.trace { FileHandle.standardError.write(Data("iteration \(iteration)\n".utf8)) }
            do {
                try self.iteration(iteration)
            } catch {
                throw FuzzFailure(seed: configuration.seedText, iteration: iteration, stage: error.stage, mismatch: error.mismatch)
            }
            report.iterations += 1
        }
    }

    /// A mismatch and what the document was.
    struct Found: Error {
        var stage: String
        var mismatch: Mismatch
    }

    mutating func iteration(_ iteration: Int) throws(Found) {
        var random = SplitMix64(seed: configuration.seed ^ (UInt64(iteration) &* 0xD1B5_4A32_D192_ED03))
        if random.chance(0.2) { return try randomJSON(&random) }
        let shape = random.pick(FuzzShape.all)
        let large = random.chance(0.02)
        let value = shape.generate(&random, large)
        let document = Data(JSONWriter.text(value, &random, plain: random.chance(0.2)))
        var accepted = false
        try check("valid \(shape.name)", shape.check(document, &accepted))
        report.valid += 1
        if !accepted { report.validRefused += 1 }
        // Broken in its bytes: any decoder path, mostly the scanner's errors.
        let bytes = Data(Mutator.bytes(Array(document), &random))
        var ignored = false
        try check("byte-mutated \(shape.name)", shape.check(bytes, &ignored))
        // Broken in a value: still JSON, wrong for the type (type mismatches, missing keys, nulls).
        let values = Data(JSONWriter.text(Mutator.value(value, &random), &random))
        try check("value-mutated \(shape.name)", shape.check(values, &ignored))
        // One of the slower checks, each every fourth iteration (they take most of the time).
        switch random.int(0...3) {
        case 0 where Self.isSmall(bytes): try check("byte-mutated \(shape.name)", compare(Probe.self, bytes))
        case 1 where Self.isSmall(bytes): try check("byte-mutated \(shape.name)", compare(AnyJSON.self, bytes, errors: .any))
        case 2 where Self.isSmall(values): try check("value-mutated \(shape.name)", compare(Probe.self, values))
        case 3 where Self.isSmall(document): try check("retained \(shape.name)", retention(document, then: bytes))
        default: break
        }
    }

    /// RandomJSON's documents, mostly valid, for the fixed types of the decoder's tests, then broken.
    mutating func randomJSON(_ random: inout SplitMix64) throws(Found) {
        switch random.int(0...2) {
        case 0:
            let document = Data(RandomJSON.document(&random).utf8)
            try check("RandomJSON document", compare(Everything.self, document, errors: .any))
            try check("RandomJSON document", compare(ItemAdded.self, document))
            let broken = Data(Mutator.bytes(Array(document), &random))
            try check("byte-mutated RandomJSON document", compare(Everything.self, broken, errors: .any))
            if Self.isSmall(broken) { try check("byte-mutated RandomJSON document", compare(Probe.self, broken)) }
        case 1:
            let cart = RandomJSON.cartLike(&random)
            try check("RandomJSON cart", compare(ItemAdded.self, cart))
            try check("RandomJSON cart", compare(Small.self, cart))
            try check("RandomJSON cart", compare([String: Int].self, cart, errors: .any))
        default:
            let value = RandomJSON.mutated(RandomJSON.value(&random, depth: 0), &random)
            try check("RandomJSON value", compare([Int?].self, value))
            try check("RandomJSON value", compare([[Double]].self, value))
            try check("RandomJSON value", compare(Probe.self, value))
            try check("RandomJSON value", compare(Int.self, value))
            try check("RandomJSON value", compare(String.self, value))
            if Self.isSmall(value) { try check("RandomJSON value", compare(AnyJSON.self, value, errors: .any)) }
        }
    }

    func compare<T: Decodable & Equatable>(_ type: T.Type, _ document: Data, errors: Differential.Errors = .same) -> Mismatch? {
        Differential.compare(type, document, errors: errors)
    }

    mutating func check(_ stage: String, _ mismatch: Mismatch?) throws(Found) {
        report.checks += 1
        if let mismatch { throw Found(stage: stage, mismatch: mismatch) }
    }

    /// Whether `document` is small and shallow enough for the types that try every decoding at every
    /// value (``Probe``, ``AnyJSON``): JSONDecoder's time for them grows with the square of the depth
    /// (each failed attempt builds its coding path), seconds for a document nested 500 deep.
    static func isSmall(_ document: Data) -> Bool {
        guard document.count < 4_096 else { return false }
        var depth = 0
        for byte in document {
            if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") {
                depth += 1
                if depth > 32 { return false }
            } else if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
                depth -= 1
            }
        }
        return true
    }

    /// A decoder kept from `document`'s decode reads it as a fresh decode does, after `other` was
    /// decoded in between (by the same thread, with the working memory it caches).
    func retention(_ document: Data, then other: Data) -> Mismatch? {
        guard let kept = try? PayloadDecoder().decode(Retained.self, from: document) else { return nil }
        let fresh = try? PayloadDecoder().decode(Probe.self, from: document)
        _ = try? PayloadDecoder().decode(AnyJSON.self, from: other)
        _ = try? PayloadDecoder().decode(Probe.self, from: other)
        let later = try? Probe(from: kept.decoder)
        guard later != fresh else { return nil }
        return Mismatch(
            type: "Retained", document: document,
            difference: "a decoder kept after its decode read \(later?.trace ?? []) where a fresh decode read \(fresh?.trace ?? [])")
    }
}

/// What a fuzz run did.
package struct FuzzReport: Sendable {
    package var iterations = 0
    /// Documents decoded as a type by both decoders and the results compared.
    package var checks = 0
    /// Valid documents of the shapes, and how many of them JSONDecoder refused: rarely, a large
    /// `Node` nested deeper than JSONDecoder's limit.
    package var valid = 0
    package var validRefused = 0
    package var duration = Duration.zero

    package var summary: String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return "\(iterations) iterations, \(checks) documents compared, \(validRefused) of \(valid) valid documents refused by JSONDecoder, "
            + String(format: "%.1f s", seconds)
    }
}

/// The first mismatch of a run, with how to repeat it.
package struct FuzzFailure: Error, CustomStringConvertible {
    package var seed: String
    package var iteration: Int
    package var stage: String
    package var mismatch: Mismatch

    package var description: String {
        """
        PayloadDecoder and JSONDecoder disagree at iteration \(iteration) of seed \(seed) (\(stage)):
        \(mismatch)
        To repeat it alone: KAPPA_FUZZ_SEED=\(seed) KAPPA_FUZZ_FIRST=\(iteration) KAPPA_FUZZ_ITERATIONS=1
        """
    }
}
