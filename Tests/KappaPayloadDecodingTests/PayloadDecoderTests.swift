import Foundation
import KappaPayloadDecoding
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
        expectSame(ItemAdded.self, #"{"cartId":"c123","sku":"SKU-00042","quantity":2}"#)  // keyNotFound
        expectSame(ItemAdded.self, #"{"cartId":"c123","sku":null,"quantity":2,"unitPrice":1}"#)  // valueNotFound
        expectSame(ItemAdded.self, #"{"cartId":"c123","sku":"s","quantity":"2","unitPrice":1}"#)  // typeMismatch
        expectSame(ItemAdded.self, #"{"cartId":"c123","sku":"s","quantity":2.5,"unitPrice":1}"#)  // dataCorrupted
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
        expectSame(Everything.self, #"{"name":"n","count":1,"flag":false,"ratio":1,"small":0,"big":0,"nested":{"level":0,"label":""},"kind":"alpha","rank":1,"scores":{},"tags":[],"matrix":[],"optionals":[]}"#)
        for (key, bad) in [("kind", #""gamma""#), ("rank", "7"), ("nested", "[]"), ("tags", "{}"), ("flag", "null"), ("date", #""nope""#),
                           ("data", #""***""#), ("url", #""""#), ("decimal", #""1""#), ("matrix", "[[true]]"), ("optionals", "[1,2,"),
                           ("scores", #"{"a":"b"}"#), ("big", "-1"), ("small", "1e2"), ("small", "128")] {
            expectSame(Everything.self, full.replacingOccurrences(of: "\"\(key)\":", with: "\"\(key)\":\(bad),\"_\(key)\":"))
        }
    }

    @Test func integersAtEveryLimit() {
        func check<T: FixedWidthInteger & Codable & Sendable>(_ type: T.Type) {
            let minimum = Int128(T.min), maximum = Int128(T.max)
            var inputs = ["\(minimum)", "\(maximum)", "\(minimum - 1)", "\(maximum + 1)", "\(maximum)0", "0", "-0", "1", "-1", "1.0", "-0.0",
                          "1e2", "1E+2", "1.5", "1e-400", "-1e-400", "0.1e1", "100e-2", "\(maximum).0", "\(maximum)e0", "01", "-01", "1.", ".1",
                          "--1", "-", "+1", "1e", "1e+", "0x10", "1.2.3", "9007199254740993.5", "9007199254740993.0", "1.0000000000000001",
                          "100000000000000000000e-2", "123456789012345678901234567890", "1e400", "\"1\"", "true", "null", "[1]", "{}"]
            if T.isSigned { inputs += ["\(minimum).0", "\(minimum)e0", "\(minimum + 1)"] }
            for input in inputs {
                expectSame(T.self, input)
                expectSame([T].self, "[\(input)]")
                expectSame(Box<T>.self, #"{"value":\#(input)}"#)
                expectSame(OptionalBox<T>.self, #"{"value":\#(input)}"#)
            }
        }
        check(Int.self); check(Int8.self); check(Int16.self); check(Int32.self); check(Int64.self)
        check(UInt.self); check(UInt8.self); check(UInt16.self); check(UInt32.self); check(UInt64.self)
    }

    @Test func floatingPointNumbers() {
        let inputs = ["0", "-0", "0.0", "-0.0", "1", "-1", "0.1", "1.5", "123.456", "1e10", "1E-10", "1e+308", "1.7976931348623157e308",
                      "1.7976931348623159e308", "1e309", "-1e309", "4.9e-324", "2.4e-324", "1e-400", "0e-400", "0.0e999", "2.2250738585072014e-308",
                      "9007199254740993", "123456789012345678901234567890", "0.1000000000000000055511151231257827", "3.4028235e38", "3.4028236e38",
                      "1e39", "1e-45", "1e-46", "1.0000000596046447753906251", "1.000000059604644775390625", "1.00000005960464477539062499",
                      "01.5", "1.", "-.5", "1e", "2e-", "1.5e+-3", "1e5e5", "\"1.5\"", "\"NaN\"", "null", "true"]
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
        let inputs = [#""""#, #""plain""#, #""caf\u00e9""#, #""\"\\\/\b\f\n\r\t""#, #""\u0000""#, #""\uD83D\uDE00""#, #""\ud83d\ude00""#,
                      #""\uD800""#, #""\uDC00""#, #""\uD83D\u0041""#, #""\uD83Dx""#, #""\uD83D\uD83D""#, #""\uZZZZ""#, #""\u+123""#,
                      #""\u12""#, #""\x""#, #""\""#, #""a"#, "\"tab\there\"", "\"nl\nhere\"", "\"del\u{7F}\"", "\"é ü 😀 中文\"", "\"e\u{301}\"",
                      #""\u00e9\u0301""#, #""a\u0062c""#, #""x\\u0041""#]
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
        let inputs = ["", " ", "\n\t\r ", "[1,2]", " [ 1 , 2 ] ", "[1,2,]", "[1,,2]", "[,]", "[1 2]", "[1,2]]", "[1,2", "[", "]", "[1]x",
                      "[1] [2]", "[tru]", "[nul]", "[truex]", "[True]", "[1,\"a\"]", "[null]", "[[1],[2,3]]", "[{}]", "\u{FEFF}[1]", "\u{FEFF}",
                      "[1]\u{0}", "\u{0}[1]", "[\"\u{0}\"]", "[1]\u{A0}", "/*c*/[1]", "[1]//", "[0x1]", "[Infinity]", "[NaN]", "['a']"]
        for input in inputs {
            expectSame([Int].self, input)
            expectSame([Int?].self, input)
            expectSame(Probe.self, input)
        }
        let objects = [#"{}"#, #"{"a":1}"#, #"{"a":1,}"#, #"{,}"#, #"{"a":1,,"b":2}"#, #"{"a" 1}"#, #"{"a":}"#, #"{a:1}"#, #"{"a":1"#, #"{"a""#,
                       #"{"a":1}}"#, #"{"a":1,"a":2}"#, #"{"a":null,"a":1}"#, #"{"\u0061":5}"#, #"{"a":1,"\u0061":5}"#, #"{"\u0061":5,"a":1}"#,
                       #"{"a":1,"b":01}"#, #"{"a":1,"b":--}"#, #"{"a":1,"b":"\uZZZZ"}"#, #"{"a":1,"b":"\u12"}"#, #"{"a":1,"b\x":2}"#,
                       #"{"a":1,"b":{"\x":1}}"#, #"{"a":1,"b":[1,"\x"]}"#, #"{"a":"x"}"#, #"{"a":null}"#, #"{"A":1}"#, #"{"a ":1}"#]
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
        let valid = #"{"name":"ada","count":3,"flag":true,"ratio":0.25,"small":-7,"big":1,"tags":["a","b\n"],"nested":{"level":1,"label":"x"},"kind":"beta","rank":2,"scores":{"x":1},"matrix":[[1]],"optionals":[null]}"#
        let bytes = Array(valid.utf8)
        for length in 0...bytes.count {
            expectSame(Everything.self, Data(bytes[0..<length]))
            expectSame(Probe.self, Data(bytes[0..<length]))
        }
    }

    @Test func datesAsISO8601() {
        let inputs = ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123Z", "2024-01-02T03:04:05.999999Z", "2024-01-02T03:04:05+01:00",
                      "2024-01-02T03:04:05+0100", "2024-01-02T03:04:05-00:00", "2024-01-02T03:04:05GMT", "2024-01-02", "2024-01-02T03:04:05",
                      "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z",
                      "2024-01-00T00:00:00Z", "2024-01-02T24:00:00Z", "2024-01-02T03:60:00Z", "2024-01-02T03:04:61Z", "2016-12-31T23:59:60Z",
                      "2024-01-02t03:04:05z", "2024-01-02 03:04:05Z", "20240102T030405Z", "2024-01-02T03:04Z", "+2024-01-02T03:04:05Z",
                      "2024-1-2T3:4:5Z", "2024-01-02T03:04:05ZZ", "2024-01-02T03:04:05Z ", "0001-01-01T00:00:00Z", "1582-10-10T00:00:00Z",
                      "1583-01-01T00:00:00Z", "1600-02-29T12:00:00Z", "1900-02-29T00:00:00Z", "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z",
                      "2000-02-29T23:59:59Z", "9999-12-31T23:59:59Z", "2024-01-02T03:04:05\\u005A", "２０２４-01-02T03:04:05Z", "", "Z"]
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
            let string = String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int.random(in: 1583...9999, using: &random), Int.random(in: 1...12, using: &random),
                                Int.random(in: 1...31, using: &random), Int.random(in: 0...23, using: &random), Int.random(in: 0...59, using: &random),
                                Int.random(in: 0...59, using: &random))
            expectSame(Date.self, "\"\(string)\"")
        }
    }

    @Test func base64DataURLsAndDecimals() {
        for input in ["", "AQID", "AQI=", "AQI", "AQ==", "AQ=", "A", "====", "AQ==AQ==", "=AQ=", "A===", "AB==", "AB=A", "AQIDBA", "QUJD",
                      "AQ ID", "-_8=", "+/8=", "QUJD\\nREVG", "QUJD\\u0045", "////", "\\/\\/\\/\\/"] {
            expectSame(Data.self, "\"\(input)\"")
        }
        for input in [#""https://example.com/a b""#, #""""#, #""ht tp://""#, #""relative/path""#, #""http://[::1]:80/""#, "1", "null"] {
            expectSame(URL.self, input)
        }
        for input in ["1.5", "12.50", "-0", "0.000", "1e127", "1e128", "1e-128", "1e-129", "1e400", "123.4500e-3", "01", "1.", "\"1\"", "null",
                      "12345678901234567890123456789012345678901234567890", "9999999999999999999999999999999999999999e90"] {
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
    }

    @Test func containerOperations() {
        for input in [#"{"a":1,"b":"x","c":null,"n":{"a":2,"x":[1]},"x":[1,null,"s",{"a":3},[]],"super":{"a":4}}"#,
                      #"[1,null,"s",true,{"a":1},[2,[3]],-0.0,1e2]"#, #"[]"#, #"[null]"#, #"{"x":[null,null]}"#, "5", "null", "\"s\"", "true",
                      #"{"a":{"b":{"c":{"n":1}}}}"#, #"{"a":[[[[1]]]]}"#, #"{"super":null}"#, #"{"n":null,"x":null}"#] {
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

    static let foundation: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    /// Both decoders on `input`: equal values, or the same error. `errorsMayDiffer` for types with
    /// dictionaries, whose errors JSONDecoder reports in its dictionary's (random) key order.
    func expectSame<T: Decodable & Equatable>(_ type: T.Type, _ input: Data, errorsMayDiffer: Bool = false,
                                              sourceLocation: SourceLocation = #_sourceLocation) {
        let theirs = Result { try Self.foundation.decode(T.self, from: input) }
        let ours = Result { try PayloadDecoder().decode(T.self, from: input) }
        let text = String(decoding: input.prefix(300), as: UTF8.self)
        switch (theirs, ours) {
        case (.success(let expected), .success(let actual)):
            #expect(expected == actual, "\(T.self) from \(text)", sourceLocation: sourceLocation)
        case (.failure(let expected), .failure(let actual)):
            if !errorsMayDiffer {
                #expect(signature(expected) == signature(actual), "\(T.self) from \(text)", sourceLocation: sourceLocation)
            }
        case (.success(let expected), .failure(let actual)):
            Issue.record("\(T.self) from \(text): JSONDecoder gave \(expected), PayloadDecoder threw \(actual)", sourceLocation: sourceLocation)
        case (.failure(let expected), .success(let actual)):
            Issue.record("\(T.self) from \(text): JSONDecoder threw \(signature(expected)), PayloadDecoder gave \(actual)", sourceLocation: sourceLocation)
        }
    }

    func expectSame<T: Decodable & Equatable>(_ type: T.Type, _ input: String, errorsMayDiffer: Bool = false,
                                              sourceLocation: SourceLocation = #_sourceLocation) {
        expectSame(type, Data(input.utf8), errorsMayDiffer: errorsMayDiffer, sourceLocation: sourceLocation)
    }
}

/// An error's case, its type, and (but for `dataCorrupted`) its coding path. JSONDecoder's own
/// `JSONError`, which its containers throw into `init(from:)` and which becomes `dataCorrupted`
/// at the top, counts as `dataCorrupted`.
func signature(_ error: any Error) -> String {
    func path(_ context: DecodingError.Context) -> String { context.codingPath.map(\.stringValue).joined(separator: ".") }
    switch error {
    case DecodingError.dataCorrupted: return "dataCorrupted"
    case DecodingError.keyNotFound(let key, let context): return "keyNotFound(\(key.stringValue)) at \(path(context))"
    case DecodingError.typeMismatch(let type, let context): return "typeMismatch(\(type)) at \(path(context))"
    case DecodingError.valueNotFound(let type, let context): return "valueNotFound(\(type)) at \(path(context))"
    default: return "\(type(of: error))" == "JSONError" ? "dataCorrupted" : "\(type(of: error)): \(error)"
    }
}

// MARK: Types decoded

private struct ItemAdded: Codable, Equatable { var cartId: String; var sku: String; var quantity: Int; var unitPrice: Int }
private struct Small: Codable, Equatable { var a: Int; var b: String? }
private struct Box<T: Codable & Equatable>: Codable, Equatable { var value: T }
private struct OptionalBox<T: Codable & Equatable>: Codable, Equatable { var value: T? }
private struct Kelvin: Codable, Equatable { var K: Int }
private struct Accented: Codable, Equatable {
    var e: String
    enum CodingKeys: String, CodingKey { case e = "é" }
}

private struct Everything: Codable, Equatable {
    enum Kind: String, Codable { case alpha, beta }
    enum Rank: Int, Codable { case first = 1, second = 2 }
    struct Nested: Codable, Equatable { var level: Int; var label: String }
    var name: String
    var count: Int
    var flag: Bool
    var ratio: Double
    var small: Int8
    var big: UInt64
    var maybe: String?
    var tags: [String]
    var nested: Nested
    var kind: Kind
    var rank: Rank
    var scores: [String: Int]
    var date: Date?
    var data: Data?
    var url: URL?
    var decimal: Decimal?
    var matrix: [[Double]]
    var optionals: [Int?]
}

/// Keeps its decoder, a container and a super decoder, to use them after `decode` returned.
private final class Keeper: Decodable, @unchecked Sendable {
    enum Key: String, CodingKey { case a, n, x }
    let decoder: any Decoder
    let container: KeyedDecodingContainer<Key>
    let superDecoder: any Decoder

    init(from decoder: any Decoder) throws {
        self.decoder = decoder
        container = try decoder.container(keyedBy: Key.self)
        superDecoder = try container.superDecoder(forKey: .n)
    }
}

/// Decodes a JSON payload held in a string with PayloadDecoder, inside its own decoding.
private struct Nesting: Decodable, Equatable {
    var inner: Small
    var a: Int

    enum CodingKeys: String, CodingKey { case inner, a }

    init(inner: Small, a: Int) {
        self.inner = inner
        self.a = a
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        inner = try PayloadDecoder().decode(Small.self, from: Data(container.decode(String.self, forKey: .inner).utf8))
        a = try container.decode(Int.self, forKey: .a)
    }
}

/// Nested arrays to any depth.
private indirect enum Tree: Decodable, Equatable {
    case leaf(Int)
    case node([Tree])

    init(from decoder: any Decoder) throws {
        if var container = try? decoder.unkeyedContainer() {
            var children: [Tree] = []
            while !container.isAtEnd { children.append(try container.decode(Tree.self)) }
            self = .node(children)
        } else {
            self = .leaf(try decoder.singleValueContainer().decode(Int.self))
        }
    }
}

/// Records what every container operation returns or throws, to compare the decoders' APIs:
/// allKeys, contains, decodeNil, decodeIfPresent (missing vs null), nested containers, super
/// decoders, coding paths, an unkeyed container's index and end after each step.
private struct Probe: Decodable, Equatable {
    var trace: [String] = []

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ stringValue: String) { self.stringValue = stringValue }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let depth = decoder.codingPath.count
        trace.append("path \(decoder.codingPath.map(\.stringValue))")
        if let keyed = attempt("keyed", { try decoder.container(keyedBy: AnyKey.self) }) {
            probe(keyed, depth: depth)
        } else if var unkeyed = attempt("unkeyed", { try decoder.unkeyedContainer() }) {
            probe(&unkeyed, depth: depth)
        } else if let single = attempt("single", { try decoder.singleValueContainer() }) {
            note("nil") { single.decodeNil() }
            note("bool") { try single.decode(Bool.self) }
            note("int") { try single.decode(Int.self) }
            note("int8") { try single.decode(Int8.self) }
            note("double") { try single.decode(Double.self) }
            note("string") { try single.decode(String.self) }
            note("date") { try single.decode(Date.self) }
            note("[int]") { try single.decode([Int].self) }
        }
    }

    mutating func attempt<T>(_ label: String, _ body: () throws -> T) -> T? {
        do { return try body() } catch { trace.append("\(label) ! \(signature(error))"); return nil }
    }

    mutating func note(_ label: String, _ body: () throws -> Any) {
        do { trace.append("\(label) = \(try body())") } catch { trace.append("\(label) ! \(signature(error))") }
    }

    mutating func probe(_ container: KeyedDecodingContainer<AnyKey>, depth: Int) {
        trace.append("codingPath \(container.codingPath.map(\.stringValue)) allKeys \(container.allKeys.map(\.stringValue).sorted())")
        for name in ["a", "b", "c", "n", "x", "super", "missing", "A"] {
            let key = AnyKey(name)
            note("\(name) contains") { container.contains(key) }
            note("\(name) nil") { try container.decodeNil(forKey: key) }
            note("\(name) bool") { try container.decode(Bool.self, forKey: key) }
            note("\(name) bool?") { try container.decodeIfPresent(Bool.self, forKey: key) as Any }
            note("\(name) int") { try container.decode(Int.self, forKey: key) }
            note("\(name) uint8?") { try container.decodeIfPresent(UInt8.self, forKey: key) as Any }
            note("\(name) int128") { try container.decode(Int128.self, forKey: key) }
            note("\(name) double") { try container.decode(Double.self, forKey: key) }
            note("\(name) float?") { try container.decodeIfPresent(Float.self, forKey: key) as Any }
            note("\(name) string") { try container.decode(String.self, forKey: key) }
            note("\(name) string?") { try container.decodeIfPresent(String.self, forKey: key) as Any }
            note("\(name) [int]") { try container.decode([Int].self, forKey: key) }
            note("\(name) [int?]?") { try container.decodeIfPresent([Int?].self, forKey: key) as Any }
            // Which of several bad entries a dictionary reports follows JSONDecoder's random key order.
            note("\(name) [string: int]") { (try? container.decode([String: Int].self, forKey: key)).map { $0.sorted(by: <).description } ?? "failed" }
            note("\(name) date?") { try container.decodeIfPresent(Date.self, forKey: key) as Any }
            note("\(name) nested keys") { try container.nestedContainer(keyedBy: AnyKey.self, forKey: key).allKeys.map(\.stringValue).sorted() }
            note("\(name) nested unkeyed") {
                let nested = try container.nestedUnkeyedContainer(forKey: key)
                return "\(nested.count ?? -1) \(nested.isAtEnd) \(nested.codingPath.map(\.stringValue))"
            }
            if depth < 2, name == "n" || name == "x" {
                note("\(name) probe") { try container.decode(Probe.self, forKey: key).trace }
                note("\(name) super") { try Probe(from: container.superDecoder(forKey: key)).trace }
            }
        }
        if depth < 2 { note("super()") { try Probe(from: container.superDecoder()).trace } }
    }

    mutating func probe(_ container: inout any UnkeyedDecodingContainer, depth: Int) {
        trace.append("count \(container.count ?? -1) atEnd \(container.isAtEnd) codingPath \(container.codingPath.map(\.stringValue))")
        for step in 0..<2 * ((container.count ?? 0) + 2) {
            switch step % 7 {
            case 0: note("nil") { try container.decodeNil() }
            case 1: note("int") { try container.decode(Int.self) }
            case 2: note("string?") { try container.decodeIfPresent(String.self) as Any }
            case 3 where depth < 2: note("probe") { try container.decode(Probe.self).trace }
            case 3: note("double") { try container.decode(Double.self) }
            case 4: note("nested unkeyed") { try container.nestedUnkeyedContainer().count ?? -1 }
            case 5: note("bool?") { try container.decodeIfPresent(Bool.self) as Any }
            default: note("nested keyed") { try container.nestedContainer(keyedBy: AnyKey.self).allKeys.map(\.stringValue).sorted() }
            }
            trace.append("at \(container.currentIndex) \(container.isAtEnd)")
        }
        if depth < 2 { note("super") { try Probe(from: container.superDecoder()).trace } }
    }
}

// MARK: Random documents

/// SplitMix64: a small deterministic generator, so every run checks the same documents.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random JSON text: mostly valid, with the odd number, string, key, comma or byte that is not.
enum RandomJSON {
    static let keys = ["a", "b", "c", "n", "x", "super", "cartId", "sku", "quantity", "unitPrice", "name", "count", "flag", "ratio", "small",
                       "big", "maybe", "tags", "nested", "level", "label", "kind", "rank", "scores", "date", "data", "url", "decimal", "matrix",
                       "optionals", "\\u0061", "na\\u006de", "\\u212A", "é"]
    static let numbers = ["0", "-0", "1", "-1", "2", "42", "127", "128", "-128", "-129", "255", "256", "1299", "9223372036854775807",
                          "9223372036854775808", "-9223372036854775808", "18446744073709551615", "18446744073709551616", "1.0", "1.5", "-0.0",
                          "1e2", "1E+2", "2.5e-3", "1e400", "1e-400", "0.1", "3.14159", "01", "1.", "-", "--1", "1e", "9007199254740993.5"]
    static let pieces = ["a", "b", "SKU-", "c1", " ", "\\n", "\\\"", "\\\\", "\\/", "\\t", "\\u0041", "\\u00e9", "\\uD83D\\uDE00", "\\uD800",
                         "\\uDC00", "\\u12G4", "\\q", "é", "😀", "中", "\u{1}", "\u{7F}", "\\u0000", "e\u{301}"]
    static let dates = ["2024-01-02T03:04:05Z", "1999-12-31T23:59:59Z", "2024-02-30T00:00:00Z", "2024-01-02T03:04:05.250Z",
                        "2024-01-02T03:04:05+02:00", "2024-01-02", "yesterday", "2024-01-02T03:04:60Z", "1500-06-01T00:00:00Z"]
    static let base64 = ["", "AQID", "AQI=", "AQ==", "QUJD", "AQI", "A===", "****", "////", "+/8="]

    static func pick<C: Collection>(_ values: C, _ random: inout SplitMix64) -> C.Element where C.Index == Int {
        values[Int.random(in: 0..<values.count, using: &random)]
    }

    static func chance(_ probability: Double, _ random: inout SplitMix64) -> Bool {
        Double.random(in: 0..<1, using: &random) < probability
    }

    static func space(_ random: inout SplitMix64) -> String {
        chance(0.8, &random) ? "" : pick([" ", "\n", "\t", "\r\n ", "  "], &random)
    }

    static func number(_ random: inout SplitMix64) -> String {
        switch Int.random(in: 0..<4, using: &random) {
        case 0: pick(numbers, &random)
        case 1: "\(Int.random(in: -1_000_000...1_000_000, using: &random))"
        case 2: "\(Double.random(in: -1e6...1e6, using: &random))"
        default: "\(Int.random(in: 1...99, using: &random))e\(Int.random(in: -30...30, using: &random))"
        }
    }

    static func string(_ random: inout SplitMix64) -> String {
        switch Int.random(in: 0..<10, using: &random) {
        case 0: return "\"\(pick(dates, &random))\""
        case 1: return "\"\(pick(base64, &random))\""
        case 2...4: return "\"\(pick(["x", "SKU-00042", "c123", "alpha", "beta", "https://example.com", ""], &random))\""
        default: return "\"" + (0..<Int.random(in: 0...6, using: &random)).map { _ in pick(pieces, &random) }.joined() + "\""
        }
    }

    static func value(_ random: inout SplitMix64, depth: Int) -> String {
        let kind = Int.random(in: 0..<(depth >= 3 ? 6 : 9), using: &random)
        switch kind {
        case 0: return pick(["null", "true", "false"], &random)
        case 1, 2: return number(&random)
        case 3...5: return string(&random)
        case 6: return array(&random, depth: depth)
        default: return object(&random, depth: depth)
        }
    }

    static func array(_ random: inout SplitMix64, depth: Int) -> String {
        let elements = (0..<Int.random(in: 0...4, using: &random)).map { _ in space(&random) + value(&random, depth: depth + 1) + space(&random) }
        return "[" + elements.joined(separator: ",") + (chance(0.05, &random) && !elements.isEmpty ? "," : "") + "]"
    }

    static func object(_ random: inout SplitMix64, depth: Int, members: [(String, String)] = []) -> String {
        var members = members
        for _ in 0..<Int.random(in: 0...5, using: &random) {
            members.append((pick(keys, &random), value(&random, depth: depth + 1)))
        }
        if chance(0.1, &random), let first = members.first { members.append(first) }  // a repeated key
        members.shuffle(using: &random)
        let text = members.map { space(&random) + "\"\($0.0)\"" + space(&random) + ":" + space(&random) + $0.1 + space(&random) }
        return "{" + text.joined(separator: ",") + (chance(0.05, &random) && !members.isEmpty ? "," : "") + "}"
    }

    /// An object with Everything's fields, mostly of the right types.
    static func document(_ random: inout SplitMix64) -> String {
        var members: [(String, String)] = []
        for key in ["name", "count", "flag", "ratio", "small", "big", "maybe", "tags", "nested", "kind", "rank", "scores", "date", "data",
                    "url", "decimal", "matrix", "optionals"] where chance(0.93, &random) {
            guard chance(0.9, &random) else {
                members.append((key, value(&random, depth: 2)))
                continue
            }
            let text: String
            switch key {
            case "name", "url": text = string(&random)
            case "count", "ratio", "small", "big", "decimal": text = number(&random)
            case "flag": text = pick(["true", "false"], &random)
            case "maybe": text = pick(["null", "\"m\""], &random)
            case "tags": text = "[" + (0..<Int.random(in: 0...3, using: &random)).map { _ in string(&random) }.joined(separator: ",") + "]"
            case "nested": text = "{\"level\":\(number(&random)),\"label\":\(string(&random))}"
            case "kind": text = pick(["\"alpha\"", "\"beta\"", "\"gamma\""], &random)
            case "rank": text = pick(["1", "2", "3", "1.0"], &random)
            case "scores": text = object(&random, depth: 2)
            case "date": text = "\"\(pick(dates, &random))\""
            case "data": text = "\"\(pick(base64, &random))\""
            case "matrix": text = "[[\(number(&random))],[]]"
            default: text = "[\(number(&random)),null]"
            }
            members.append((key, text))
        }
        return object(&random, depth: 1, members: members)
    }

    /// A cart-shaped object: the four fields, mostly right, sometimes extra, missing, null or wrong.
    static func cartLike(_ random: inout SplitMix64) -> Data {
        var members: [(String, String)] = []
        if chance(0.95, &random) { members.append(("cartId", chance(0.9, &random) ? "\"c\(Int.random(in: 0...99_999, using: &random))\"" : value(&random, depth: 2))) }
        if chance(0.95, &random) { members.append(("sku", chance(0.9, &random) ? string(&random) : value(&random, depth: 2))) }
        if chance(0.95, &random) { members.append(("quantity", chance(0.9, &random) ? number(&random) : value(&random, depth: 2))) }
        if chance(0.95, &random) { members.append(("unitPrice", chance(0.9, &random) ? number(&random) : value(&random, depth: 2))) }
        if chance(0.5, &random) { members.append(("a", number(&random))) }
        return mutated(object(&random, depth: 1, members: members), &random)
    }

    /// Now and then one byte deleted, inserted or replaced (maybe breaking UTF-8), or the text cut short.
    static func mutated(_ text: String, _ random: inout SplitMix64) -> Data {
        var bytes = Array(text.utf8)
        guard chance(0.25, &random), !bytes.isEmpty else { return Data(bytes) }
        let at = Int.random(in: 0..<bytes.count, using: &random)
        let byte = pick(Array("\",]}\\:0 x-.e\u{1}".utf8) + [0xC3, 0xFF], &random)
        switch Int.random(in: 0..<4, using: &random) {
        case 0: bytes.remove(at: at)
        case 1: bytes.insert(byte, at: at)
        case 2: bytes[at] = byte
        default: bytes.removeSubrange(at...)
        }
        return Data(bytes)
    }
}
