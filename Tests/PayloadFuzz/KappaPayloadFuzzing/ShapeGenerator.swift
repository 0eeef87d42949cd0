import Foundation

/// Random documents of the ``FuzzShapes`` types: every required field of the right type, optional
/// fields missing, null or present, members in any order, and now and then members the type does
/// not know or a repeated key (of which the first counts).
package enum ShapeGenerator {
    /// `large`: far past the decoder's cached working memory (about 13 KB) and its first guess at the
    /// tape's size, or nested deeper than JSONDecoder allows.
    static func order(_ random: inout SplitMix64, large: Bool) -> JSONValue {
        let lines = large ? random.int(200...600) : random.int(0...4)
        let history: JSONValue = .array(
            (0..<random.int(0...3)).map { _ in
                .array((0..<random.int(0...4)).map { _ in .number(RandomScalars.integer(Int.self, &random)) })
            })
        return object(
            [
                ("id", .number(RandomScalars.integer(Int64.self, &random))),
                ("customer", customer(&random)),
                ("lines", .array((0..<lines).map { _ in line(&random) })),
                ("note", optional(&random) { .string(RandomScalars.string(&$0)) }),
                ("placedAt", .string(RandomScalars.date(&random))),
                ("paid", .bool(random.chance(0.5))),
                ("discount", optional(&random) { .number(RandomScalars.double(&$0)) }),
                ("priority", .number(RandomScalars.integer(UInt8.self, &random))),
                ("attributes", dictionary(&random) { .string(RandomScalars.string(&$0)) }),
                ("history", optional(&random) { _ in history }),
            ], &random)
    }

    static func customer(_ random: inout SplitMix64) -> JSONValue {
        let tags: JSONValue = .array((0..<random.int(0...3)).map { _ in .string(RandomScalars.string(&random)) })
        return object(
            [
                ("name", .string(RandomScalars.string(&random))),
                ("email", optional(&random) { .string(RandomScalars.string(&$0)) }),
                ("tags", tags),
                // The property's key, precomposed, or decomposed: the same Swift string.
                (random.chance(0.5) ? "café" : "cafe\u{301}", optional(&random) { .bool($0.chance(0.5)) }),
                ("since", optional(&random) { .string(RandomScalars.date(&$0)) }),
            ], &random)
    }

    static func line(_ random: inout SplitMix64) -> JSONValue {
        object(
            [
                ("sku", .string(RandomScalars.string(&random))),
                ("quantity", .number(RandomScalars.integer(Int.self, &random))),
                ("unitPrice", .number(RandomScalars.double(&random))),
                ("rank", optional(&random) { .number(RandomScalars.integer(Int16.self, &$0)) }),
                ("code", optional(&random) { .number(RandomScalars.integer(UInt64.self, &$0)) }),
                ("options", optional(&random) { dictionary(&$0) { .number(RandomScalars.integer(Int.self, &$0)) } }),
            ], &random)
    }

    static func node(_ random: inout SplitMix64, large: Bool) -> JSONValue {
        // Large: a chain around JSONDecoder's limit of 512 nested containers (a node is two deep).
        var depth = large ? random.int(250...260) : random.int(0...4)
        var tree = object([("label", .string(RandomScalars.string(&random))), ("children", .array([]))], &random)
        while depth > 0 {
            depth -= 1
            var children = (0..<random.int(0...2)).map { _ in leafNode(&random) }
            children.insert(tree, at: random.int(0...children.count))
            tree = object(
                [
                    ("label", .string(RandomScalars.string(&random))),
                    ("weight", optional(&random) { .number(RandomScalars.integer(Int32.self, &$0)) }),
                    ("children", .array(children)),
                ], &random)
        }
        return tree
    }

    static func leafNode(_ random: inout SplitMix64) -> JSONValue {
        object([("label", .string(RandomScalars.string(&random))), ("children", .array([]))], &random)
    }

    static func readings(_ random: inout SplitMix64, large: Bool) -> JSONValue {
        // Large: thousands of small numbers, more tokens to the byte than the tape is first given.
        let values: [JSONValue] =
            large
            ? (0..<random.int(3_000...12_000)).map { _ in .number("\(random.int(0...9))") }
            : (0..<random.int(0...6)).map { _ in .number(RandomScalars.double(&random)) }
        return object(
            [
                ("sensor", .string(RandomScalars.string(&random))),
                ("values", .array(values)),
                ("ratio", optional(&random) { .number(RandomScalars.float(&$0)) }),
                (
                    "samples",
                    .array(
                        (0..<random.int(0...5)).map { _ in
                            random.chance(0.3) ? .null : .number(RandomScalars.integer(Int.self, &random))
                        })
                ),
                ("raw", .array((0..<random.int(0...8)).map { _ in .number(RandomScalars.integer(UInt8.self, &random)) })),
                ("stamps", .array((0..<random.int(0...3)).map { _ in .string(RandomScalars.date(&random)) })),
                ("limits", optional(&random) { dictionary(&$0) { .number(RandomScalars.double(&$0)) } }),
                ("flags", .array((0..<random.int(0...4)).map { _ in .bool(random.chance(0.5)) })),
            ], &random)
    }

    /// Any JSON value, `depth` levels from the top.
    static func any(_ random: inout SplitMix64, depth: Int = 0) -> JSONValue {
        switch random.int(0...(depth >= 4 ? 5 : 7)) {
        case 0: return .null
        case 1: return .bool(random.chance(0.5))
        case 2: return .number(RandomScalars.integer(Int64.self, &random))
        case 3: return .number(RandomScalars.double(&random))
        case 4, 5: return .string(RandomScalars.string(&random))
        case 6: return .array((0..<random.int(0...4)).map { _ in any(&random, depth: depth + 1) })
        default: return .object((0..<random.int(0...4)).map { _ in (RandomScalars.key(&random), any(&random, depth: depth + 1)) })
        }
    }

    // MARK: Members

    /// An optional field's value: missing (nil), null, or `value`.
    static func optional(_ random: inout SplitMix64, _ value: (inout SplitMix64) -> JSONValue) -> JSONValue? {
        switch random.int(0...2) {
        case 0: nil
        case 1: .null
        default: value(&random)
        }
    }

    /// A struct's object: its fields (nil: left out), maybe with members it does not know and a
    /// repeated field after its first, in any order.
    static func object(_ fields: [(String, JSONValue?)], _ random: inout SplitMix64) -> JSONValue {
        var members = fields.compactMap { field in field.1.map { (field.0, $0) } }
        // Now and then more members than the decoder searches in place (16): it indexes them.
        if random.chance(0.2) {
            for _ in 0..<(random.chance(0.2) ? random.int(10...30) : random.int(1...2)) {
                let key = RandomScalars.key(&random)
                if !fields.contains(where: { $0.0 == key }) { members.append((key, any(&random, depth: 2))) }
            }
        }
        if random.chance(0.7) { members.shuffle(using: &random) }
        if random.chance(0.05), let first = members.first { members.append((first.0, any(&random, depth: 2))) }
        return .object(members)
    }

    /// A `[String: …]` of up to four entries (now and then up to 40), keys of any kind, `value` for each.
    static func dictionary(_ random: inout SplitMix64, _ value: (inout SplitMix64) -> JSONValue) -> JSONValue {
        .object(
            (0..<(random.chance(0.05) ? random.int(17...40) : random.int(0...4))).map { _ in
                (random.chance(0.5) ? "k\(random.int(0...60))" : RandomScalars.key(&random), value(&random))
            })
    }
}
