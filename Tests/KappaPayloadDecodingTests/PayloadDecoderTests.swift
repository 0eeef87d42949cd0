import Foundation
import KappaPayloadDecoding
import KappaPayloadFuzzing
import Testing

/// PayloadDecoder against Foundation's JSONDecoder configured as Kappa's EventRegistry configures it: for
/// every input, the same value, or both throw the same `DecodingError` case (with the same type and,
/// except for `dataCorrupted`, where JSONDecoder mostly reports an empty path, the same coding path).
@Suite("PayloadDecoder: differential against JSONDecoder")
struct PayloadDecoderTests {
    // MARK: Values and structure

    @Test func cartPayloads() {
        expectSame(ItemAdded.self, #"{"cartId":"c123","sku":"SKU-00042","quantity":2,"unitPrice":1299}"#)
        expectSame(ItemAdded.self, #" { "unitPrice" : 1299 , "quantity":2,"sku":"SKU","cartId":"c" } "#)
        expectSame(ItemAdded.self, #"{"cartId":"c123","sku":"SKU-00042","quantity":2,"unitPrice":1299,"extra":[1,{"x":null}]}"#)
        expectSame(ItemAdded.self, #"{"cartId":"c123","sku":"SKU-00042","quantity":2}"#) // keyNotFound
        expectSame(ItemAdded.self, #"{"cartId":"c123","sku":null,"quantity":2,"unitPrice":1}"#) // valueNotFound
        expectSame(ItemAdded.self, #"{"cartId":"c123","sku":"s","quantity":"2","unitPrice":1}"#) // typeMismatch
        expectSame(ItemAdded.self, #"{"cartId":"c123","sku":"s","quantity":2.5,"unitPrice":1}"#) // dataCorrupted
        expectSame(ItemAdded.self, #"[]"#)
        expectSame(ItemAdded.self, #"null"#)
    }

    @Test func everyKindOfValueAndTheSpecialTypes() {
        let full = #"""
            {"name":"ada","count":3,"flag":true,"ratio":0.25,"small":-7,"big":18446744073709551615,"maybe":null,
             "tags":["a","b"],"nested":{"level":1,"label":"x"},"kind":"beta","rank":2,"scores":{"x":1,"y":-2},
             "date":"2024-01-02T03:04:05Z","data":"AQID","url":"https://example.com/a?b=c","decimal":12.50,
             "matrix":[[1.5,2],[],[-0.0]],"optionals":[1,null,3]}
            """#
        expectSame(Everything.self, full)
        expectSame(
            Everything.self,
            #"{"name":"n","count":1,"flag":false,"ratio":1,"small":0,"big":0,"nested":{"level":0,"label":""},"kind":"alpha","rank":1,"scores":{},"tags":[],"matrix":[],"optionals":[]}"#
        )
        for (key, bad) in [
            ("kind", #""gamma""#), ("rank", "7"), ("nested", "[]"), ("tags", "{}"), ("flag", "null"), ("date", #""nope""#),
            ("data", #""***""#), ("url", #""""#), ("decimal", #""1""#), ("matrix", "[[true]]"), ("optionals", "[1,2,"),
            ("scores", #"{"a":"b"}"#), ("big", "-1"), ("small", "1e2"), ("small", "128"),
        ] {
            expectSame(Everything.self, full.replacingOccurrences(of: "\"\(key)\":", with: "\"\(key)\":\(bad),\"_\(key)\":"))
        }
    }

    @Test func integersAtEveryLimit() {
        func check<T: FixedWidthInteger & Codable & Sendable>(_ type: T.Type) {
            let minimum = Int128(T.min), maximum = Int128(T.max)
            var inputs = [
                "\(minimum)", "\(maximum)", "\(minimum - 1)", "\(maximum + 1)", "\(maximum)0", "0", "-0", "1", "-1", "1.0", "-0.0",
                "1e2", "1E+2", "1.5", "1e-400", "-1e-400", "0.1e1", "100e-2", "\(maximum).0", "\(maximum)e0", "01", "-01", "1.", ".1",
                "--1", "-", "+1", "1e", "1e+", "0x10", "1.2.3", "9007199254740993.5", "9007199254740993.0", "1.0000000000000001",
                "100000000000000000000e-2", "123456789012345678901234567890", "1e400", "\"1\"", "true", "null", "[1]", "{}",
            ]
            if T.isSigned { inputs += ["\(minimum).0", "\(minimum)e0", "\(minimum + 1)"] }
            for input in inputs {
                expectSame(T.self, input)
                expectSame([T].self, "[\(input)]")
                expectSame(Box<T>.self, #"{"value":\#(input)}"#)
                expectSame(OptionalBox<T>.self, #"{"value":\#(input)}"#)
            }
        }
        check(Int.self)
        check(Int8.self)
        check(Int16.self)
        check(Int32.self)
        check(Int64.self)
        check(UInt.self)
        check(UInt8.self)
        check(UInt16.self)
        check(UInt32.self)
        check(UInt64.self)
    }

    @Test func floatingPointNumbers() {
        let inputs = [
            "0", "-0", "0.0", "-0.0", "1", "-1", "0.1", "1.5", "123.456", "1e10", "1E-10", "1e+308", "1.7976931348623157e308",
            "1.7976931348623159e308", "1e309", "-1e309", "4.9e-324", "2.4e-324", "1e-400", "0e-400", "0.0e999", "2.2250738585072014e-308",
            "9007199254740993", "123456789012345678901234567890", "0.1000000000000000055511151231257827", "3.4028235e38", "3.4028236e38",
            "1e39", "1e-45", "1e-46", "1.0000000596046447753906251", "1.000000059604644775390625", "1.00000005960464477539062499",
            "01.5", "1.", "-.5", "1e", "2e-", "1.5e+-3", "1e5e5", "\"1.5\"", "\"NaN\"", "null", "true",
        ]
        for input in inputs {
            expectSame(Double.self, input)
            expectSame(Float.self, input)
            expectSame(Box<Double>.self, #"{"value":\#(input)}"#)
            expectSame([Float].self, "[\(input)]")
            let ours = try? PayloadDecoder().decode(Double.self, from: Data(input.utf8))
            let theirs = try? Self.foundation.decode(Double.self, from: Data(input.utf8))
            #expect(ours?.bitPattern == theirs?.bitPattern, "\(input): sign and bits")
        }
    }

    @Test func stringsEscapesAndUnicode() {
        let inputs = [
            #""""#, #""plain""#, #""caf\u00e9""#, #""\"\\\/\b\f\n\r\t""#, #""\u0000""#, #""\uD83D\uDE00""#, #""\ud83d\ude00""#,
            #""\uD800""#, #""\uDC00""#, #""\uD83D\u0041""#, #""\uD83Dx""#, #""\uD83D\uD83D""#, #""\uZZZZ""#, #""\u+123""#,
            #""\u12""#, #""\x""#, #""\""#, #""a"#, "\"tab\there\"", "\"nl\nhere\"", "\"del\u{7F}\"", "\"é ü 😀 中文\"", "\"e\u{301}\"",
            #""\u00e9\u0301""#, #""a\u0062c""#, #""x\\u0041""#,
        ]
        for input in inputs {
            expectSame(String.self, input)
            expectSame(Box<String>.self, #"{"value":\#(input)}"#)
            expectSame([String: String].self, #"{\#(input):"v"}"#)
        }
        // Raw bytes that are not UTF-8, in a decoded value and in a value never decoded.
        for bytes: [UInt8] in [[0xC3], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xC0, 0xAF], [0xFF], [0xE2, 0x82]] {
            expectSame(String.self, Data([0x22] + bytes + [0x22]))
            expectSame(Box<String>.self, Data(#"{"value":""#.utf8) + Data(bytes) + Data(#""}"#.utf8))
            expectSame(Box<Int>.self, Data(#"{"value":1,"other":""#.utf8) + Data(bytes) + Data(#""}"#.utf8))
            expectSame(Box<Int>.self, Data(#"{"value":1,""#.utf8) + Data(bytes) + Data(#"":2}"#.utf8))
            expectSame(Box<String>.self, Data(#"{"value":"a\n"#.utf8) + Data(bytes) + Data(#""}"#.utf8))
        }
    }

    @Test func documentsAndStructure() {
        let inputs = [
            "", " ", "\n\t\r ", "[1,2]", " [ 1 , 2 ] ", "[1,2,]", "[1,,2]", "[,]", "[1 2]", "[1,2]]", "[1,2", "[", "]", "[1]x",
            "[1] [2]", "[tru]", "[nul]", "[truex]", "[True]", "[1,\"a\"]", "[null]", "[[1],[2,3]]", "[{}]", "\u{FEFF}[1]", "\u{FEFF}",
            "[1]\u{0}", "\u{0}[1]", "[\"\u{0}\"]", "[1]\u{A0}", "/*c*/[1]", "[1]//", "[0x1]", "[Infinity]", "[NaN]", "['a']",
        ]
        for input in inputs {
            expectSame([Int].self, input)
            expectSame([Int?].self, input)
            expectSame(Probe.self, input)
        }
        let objects = [
            #"{}"#, #"{"a":1}"#, #"{"a":1,}"#, #"{,}"#, #"{"a":1,,"b":2}"#, #"{"a" 1}"#, #"{"a":}"#, #"{a:1}"#, #"{"a":1"#, #"{"a""#,
            #"{"a":1}}"#, #"{"a":1,"a":2}"#, #"{"a":null,"a":1}"#, #"{"\u0061":5}"#, #"{"a":1,"\u0061":5}"#, #"{"\u0061":5,"a":1}"#,
            #"{"a":1,"b":01}"#, #"{"a":1,"b":--}"#, #"{"a":1,"b":"\uZZZZ"}"#, #"{"a":1,"b":"\u12"}"#, #"{"a":1,"b\x":2}"#,
            #"{"a":1,"b":{"\x":1}}"#, #"{"a":1,"b":[1,"\x"]}"#, #"{"a":"x"}"#, #"{"a":null}"#, #"{"A":1}"#, #"{"a ":1}"#,
        ]
        for input in objects {
            expectSame(Small.self, input)
            expectSame([String: Int].self, input)
            expectSame(Probe.self, input)
        }
        // Keys compare as Swift strings: U+212A KELVIN SIGN equals "K", "e" + U+0301 equals "é".
        expectSame(Kelvin.self, #"{"\u212A":3}"#)
        expectSame(Kelvin.self, "{\"\u{212A}\":3}")
        expectSame(Accented.self, #"{"e\u0301":"x"}"#)
        expectSame(Accented.self, "{\"e\u{301}\":\"x\"}")
        // Many members: the indexed lookup.
        let many = (0..<40).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
        expectSame([String: Int].self, "{\(many),\"k3\":99}")
        expectSame(Probe.self, "{\(many),\"a\":7,\"a\":8}")
        expectSame(Small.self, "{\(many),\"a\":7,\"a\":8}")
    }

    @Test func everyTruncationOfAValidPayloadFails() {
        let valid =
            #"{"name":"ada","count":3,"flag":true,"ratio":0.25,"small":-7,"big":1,"tags":["a","b\n"],"nested":{"level":1,"label":"x"},"kind":"beta","rank":2,"scores":{"x":1},"matrix":[[1]],"optionals":[null]}"#
        let bytes = Array(valid.utf8)
        for length in 0...bytes.count {
            expectSame(Everything.self, Data(bytes[0..<length]))
            expectSame(Probe.self, Data(bytes[0..<length]))
        }
    }

    @Test func datesAsISO8601() {
        let inputs = [
            "2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123Z", "2024-01-02T03:04:05.999999Z", "2024-01-02T03:04:05+01:00",
            "2024-01-02T03:04:05+0100", "2024-01-02T03:04:05-00:00", "2024-01-02T03:04:05GMT", "2024-01-02", "2024-01-02T03:04:05",
            "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z",
            "2024-01-00T00:00:00Z", "2024-01-02T24:00:00Z", "2024-01-02T03:60:00Z", "2024-01-02T03:04:61Z", "2016-12-31T23:59:60Z",
            "2024-01-02t03:04:05z", "2024-01-02 03:04:05Z", "20240102T030405Z", "2024-01-02T03:04Z", "+2024-01-02T03:04:05Z",
            "2024-1-2T3:4:5Z", "2024-01-02T03:04:05ZZ", "2024-01-02T03:04:05Z ", "0001-01-01T00:00:00Z", "1582-10-10T00:00:00Z",
            "1583-01-01T00:00:00Z", "1600-02-29T12:00:00Z", "1900-02-29T00:00:00Z", "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59Z", "9999-12-31T23:59:59Z", "2024-01-02T03:04:05\\u005A", "２０２４-01-02T03:04:05Z", "", "Z",
        ]
        for input in inputs {
            expectSame(Date.self, "\"\(input)\"")
            expectSame(Box<Date>.self, #"{"value":"\#(input)"}"#)
        }
        for input in ["0", "1700000000", "null", "[]", "true"] {
            expectSame(Date.self, input)
            expectSame(Box<Date>.self, #"{"value":\#(input)}"#)
        }
        // The fast path against ISO8601FormatStyle over random valid timestamps.
        var random = SplitMix64(seed: 8601)
        for _ in 0..<2_000 {
            let string = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int.random(in: 1583...9999, using: &random), Int.random(in: 1...12, using: &random),
                Int.random(in: 1...31, using: &random), Int.random(in: 0...23, using: &random), Int.random(in: 0...59, using: &random),
                Int.random(in: 0...59, using: &random))
            expectSame(Date.self, "\"\(string)\"")
        }
    }

    @Test func base64DataURLsAndDecimals() {
        for input in [
            "", "AQID", "AQI=", "AQI", "AQ==", "AQ=", "A", "====", "AQ==AQ==", "=AQ=", "A===", "AB==", "AB=A", "AQIDBA", "QUJD",
            "AQ ID", "-_8=", "+/8=", "QUJD\\nREVG", "QUJD\\u0045", "////", "\\/\\/\\/\\/",
        ] {
            expectSame(Data.self, "\"\(input)\"")
        }
        for input in [#""https://example.com/a b""#, #""""#, #""ht tp://""#, #""relative/path""#, #""http://[::1]:80/""#, "1", "null"] {
            expectSame(URL.self, input)
        }
        for input in [
            "1.5", "12.50", "-0", "0.000", "1e127", "1e128", "1e-128", "1e-129", "1e400", "123.4500e-3", "01", "1.", "\"1\"", "null",
            "12345678901234567890123456789012345678901234567890", "9999999999999999999999999999999999999999e90",
        ] {
            expectSame(Decimal.self, input)
            expectSame(Box<Decimal>.self, #"{"value":\#(input)}"#)
        }
    }

    @Test func nestingDepth() {
        let deep = { (depth: Int) in String(repeating: "[", count: depth) + String(repeating: "]", count: depth) }
        expectSame(Tree.self, deep(512))
        expectSame(Tree.self, deep(513))
        expectSame(Probe.self, deep(513))
        expectSame([Int].self, String(repeating: "[", count: 100_000))
        expectSame([Int].self, String(repeating: "{\"a\":", count: 100_000))
        // JSONDecoder crashes on these (the 513th `[` last, or followed by line breaks only), so
        // they are not compared: PayloadDecoder refuses them as too deep.
        for text in [
            String(repeating: "[", count: 513), String(repeating: "[", count: 513) + "\n\r",
            String(repeating: "{\"a\":", count: 256) + String(repeating: "[", count: 257),
        ] {
            #expect(throws: DecodingError.self) { try PayloadDecoder().decode(Tree.self, from: Data(text.utf8)) }
            #expect(Differential.compare(Probe.self, Data(text.utf8)) == nil)
        }
    }

    /// A zero with an exponent is zero, for every type; JSONDecoder refuses some of these spellings
    /// as `Double` or `Float` (see PayloadDecoder's documentation), and agrees on the others.
    @Test func zeroWithAnExponent() throws {
        for text in ["0e5", "0e9", "0E5", "0.00e1", "0.000e+5", "0.00e-1", "0e10", "0E+5", "0.0e5", "0e0", "0e-400"] {
            let zero = try PayloadDecoder().decode(Double.self, from: Data(text.utf8))
            #expect(zero == 0 && zero.sign == .plus, "\(text)")
            #expect(try PayloadDecoder().decode(Float.self, from: Data(("-" + text).utf8)).sign == .minus, "-\(text)")
            #expect(try PayloadDecoder().decode(Int.self, from: Data(text.utf8)) == 0, "\(text)")
            if let theirs = try? Self.foundation.decode(Double.self, from: Data(text.utf8)) { #expect(theirs == zero, "\(text)") }
            expectSame(Int8.self, text)
            expectSame(Decimal.self, text)
            expectSame([Double].self, "[\(text)]")
        }
    }

    @Test func containerOperations() {
        for input in [
            #"{"a":1,"b":"x","c":null,"n":{"a":2,"x":[1]},"x":[1,null,"s",{"a":3},[]],"super":{"a":4}}"#,
            #"[1,null,"s",true,{"a":1},[2,[3]],-0.0,1e2]"#, #"[]"#, #"[null]"#, #"{"x":[null,null]}"#, "5", "null", "\"s\"", "true",
            #"{"a":{"b":{"c":{"n":1}}}}"#, #"{"a":[[[[1]]]]}"#, #"{"super":null}"#, #"{"n":null,"x":null}"#,
        ] {
            expectSame(Probe.self, input)
            expectSame([Probe].self, "[\(input),\(input)]")
            expectSame([String: Probe].self, #"{"k":\#(input)}"#)
        }
    }

    @Test func largeDocumentsAndDecodersThatOutliveOrNestTheirDecode() async throws {
        // More tokens than the first guess at the tape's size, and past the per-thread cache's size.
        let many = "[" + Array(repeating: "1", count: 20_000).joined(separator: ",") + "]"
        expectSame([Int].self, many)
        expectSame([[Int]].self, "[" + Array(repeating: "[]", count: 5_000).joined(separator: ",") + "]")
        expectSame(Small.self, #"{"a":7}"#)
        // A decoder and containers kept after `decode` returned still read their payload.
        let kept = try PayloadDecoder().decode(Keeper.self, from: Data(#"{"a":5,"n":{"a":6},"x":[7,8]}"#.utf8))
        _ = try PayloadDecoder().decode(Small.self, from: Data(#"{"a":99,"b":"other payload"}"#.utf8))
        #expect(try kept.container.decode(Int.self, forKey: .a) == 5)
        #expect(try kept.container.nestedContainer(keyedBy: Keeper.Key.self, forKey: .n).decode(Int.self, forKey: .a) == 6)
        var elements = try kept.container.nestedUnkeyedContainer(forKey: .x)
        #expect(try elements.decode(Int.self) == 7)
        #expect(try kept.decoder.container(keyedBy: Keeper.Key.self).decode(Int.self, forKey: .a) == 5)
        #expect(try kept.superDecoder.container(keyedBy: Keeper.Key.self).decode(Int.self, forKey: .a) == 6)
        // A decode inside another (from an init(from:)) on the same thread.
        let outer = try PayloadDecoder().decode(Nesting.self, from: Data(#"{"inner":"{\"a\":3,\"b\":\"x\"}","a":4}"#.utf8))
        #expect(outer == Nesting(inner: Small(a: 3, b: "x"), a: 4))
        // Many threads at once (each has its own cached core).
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for index in 0..<2_000 {
                        let payload = #"{"cartId":"c\#(task)","sku":"S\#(index)","quantity":\#(index),"unitPrice":\#(task)}"#
                        let decoded = try PayloadDecoder().decode(ItemAdded.self, from: Data(payload.utf8))
                        guard decoded == ItemAdded(cartId: "c\(task)", sku: "S\(index)", quantity: index, unitPrice: task) else {
                            throw CancellationError()
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func seededRandomDocuments() {
        var random = SplitMix64(seed: 0x4B41_5050_41)
        for _ in 0..<500 {
            let document = RandomJSON.document(&random)
            expectSame(Everything.self, document, errorsMayDiffer: true)
            expectSame(Probe.self, document)
            expectSame(ItemAdded.self, document)
        }
        for _ in 0..<500 {
            let cart = RandomJSON.cartLike(&random)
            expectSame(ItemAdded.self, cart)
            expectSame(Small.self, cart)
            expectSame([String: Int].self, cart, errorsMayDiffer: true)
        }
        for _ in 0..<500 {
            let value = RandomJSON.mutated(RandomJSON.value(&random, depth: 0), &random)
            expectSame([Int?].self, value)
            expectSame([[Double]].self, value)
            expectSame(Probe.self, value)
            expectSame(Int.self, value)
            expectSame(String.self, value)
        }
    }

    // MARK: The comparison

    static let foundation = Differential.foundation

    /// Both decoders on `input`: equal values, or the same error. `errorsMayDiffer` for types with
    /// dictionaries, whose errors JSONDecoder reports in its dictionary's (random) key order.
    func expectSame<T: Decodable & Equatable>(
        _ type: T.Type, _ input: Data, errorsMayDiffer: Bool = false,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        if let mismatch = Differential.compare(type, input, errors: errorsMayDiffer ? .any : .same) {
            Issue.record("\(mismatch)", sourceLocation: sourceLocation)
        }
    }

    func expectSame<T: Decodable & Equatable>(
        _ type: T.Type, _ input: String, errorsMayDiffer: Bool = false,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        expectSame(type, Data(input.utf8), errorsMayDiffer: errorsMayDiffer, sourceLocation: sourceLocation)
    }
}
