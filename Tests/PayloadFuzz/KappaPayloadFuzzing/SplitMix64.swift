/// SplitMix64: a small deterministic generator, so that a seed names the same documents on every
/// machine and every run.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value from `values`.
    package mutating func pick<C: Collection>(_ values: C) -> C.Element where C.Index == Int {
        values[Int.random(in: 0..<values.count, using: &self)]
    }

    /// True with `probability`.
    package mutating func chance(_ probability: Double) -> Bool {
        Double.random(in: 0..<1, using: &self) < probability
    }

    /// A number in `range`.
    package mutating func int(_ range: ClosedRange<Int>) -> Int {
        Int.random(in: range, using: &self)
    }
}
