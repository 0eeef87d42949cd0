import Foundation
import Kappa
import KappaPayloadDecoding

/// What the log refuses in a payload's (or metadata's) text beyond what PostgreSQL's `json` checks.
///
/// `json` stores any JSON text, but a `\u0000` escape and a lone surrogate escape (`\uD800` without its
/// low half) are refused by `jsonb` — so by `payload::jsonb` and by SQL that reads fields — and a lone
/// surrogate by JSON decoders (`PayloadDecoder`, Foundation's `JSONDecoder`). The log cannot be
/// changed afterwards, so such an event would fail every reader for good: it is refused at append,
/// as it was when payloads were stored as `jsonb`. Text that is not UTF-8 is refused too (it would be
/// changed on the way). Swift's encoders never write any of these for a Swift `String`, except
/// `\u0000` for a string that holds U+0000.
enum PayloadText {
    /// Why `text` cannot be stored, or `nil` when it can.
    static func problem(_ text: Data) -> String? {
        text.withUnsafeBytes { raw in
            String(validating: raw, as: UTF8.self) == nil ? "is not UTF-8 text" : JSONScalars.unreadableEscape(in: raw)
        }
    }
}
