import Foundation

/// A type the fuzzer writes documents for: how to make one, and the comparison of the decoders on
/// a document (the type itself, and for scalars related types).
struct FuzzShape: Sendable {
    let name: String
    /// A random document; `large`: see ``ShapeGenerator``.
    let generate: @Sendable (inout SplitMix64, _ large: Bool) -> JSONValue
    /// The first mismatch on the document; sets the flag when JSONDecoder decoded it.
    let check: @Sendable (Data, inout Bool) -> Mismatch?

    static let all: [FuzzShape] = [
        FuzzShape(name: "Order", generate: ShapeGenerator.order) { Differential.compare(Order.self, $0, errors: .any, foundationAccepted: &$1) },
        FuzzShape(name: "Node", generate: ShapeGenerator.node) { Differential.compare(Node.self, $0, errors: .same, foundationAccepted: &$1) },
        FuzzShape(name: "Readings", generate: ShapeGenerator.readings) {
            Differential.compare(Readings.self, $0, errors: .any, foundationAccepted: &$1)
        },
        FuzzShape(name: "[Line]", generate: { random, _ in .array((0..<random.int(0...3)).map { _ in ShapeGenerator.line(&random) }) }) {
            Differential.compare([Line].self, $0, errors: .any, foundationAccepted: &$1)
        },
        FuzzShape(name: "AnyJSON", generate: { random, _ in ShapeGenerator.any(&random) }) { document, accepted in
            // Mutated documents can be too deep for AnyJSON's time with JSONDecoder (see `isSmall`).
            guard PayloadFuzzer.isSmall(document) else { return nil }
            return Differential.compare(AnyJSON.self, document, errors: .any, foundationAccepted: &accepted)
        },
        FuzzShape(name: "String", generate: { random, _ in .string(RandomScalars.string(&random)) }) {
            Differential.compare(String.self, $0, errors: .same, foundationAccepted: &$1)
        },
        FuzzShape(name: "Double", generate: { random, _ in .number(RandomScalars.double(&random)) }) { document, accepted in
            Differential.compare(Double.self, document, errors: .same, foundationAccepted: &accepted)
                ?? Differential.compare(Float.self, document) ?? Differential.compare(Decimal.self, document)
        },
        FuzzShape(name: "Int64", generate: { random, _ in .number(RandomScalars.integer(Int64.self, &random)) }) { document, accepted in
            Differential.compare(Int64.self, document, errors: .same, foundationAccepted: &accepted)
                ?? Differential.compare(UInt8.self, document) ?? Differential.compare(Int.self, document)
        },
        FuzzShape(name: "Date", generate: { random, _ in .string(RandomScalars.date(&random)) }) {
            Differential.compare(Date.self, $0, errors: .same, foundationAccepted: &$1)
        },
    ]
}
