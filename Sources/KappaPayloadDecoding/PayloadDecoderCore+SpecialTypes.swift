import Foundation

/// The types JSONDecoder decodes itself rather than by their `init(from:)`, with its strategies as
/// Kappa's `EventRegistry` sets them: dates ISO 8601, data base64, URLs and decimals as JSONDecoder does.
extension PayloadDecoderCore {
    /// JSONDecoder's `.iso8601`: `Date.ISO8601FormatStyle().parse`, which is lenient (fractional
    /// seconds, `+0100`, `GMT`, out-of-range fields rolled over, trailing text…). The common
    /// `yyyy-MM-ddTHH:mm:ssZ` shape with fields in range is computed directly, to the same value.
    func decodeDate(at index: Int) throws(ValueFailure) -> Date {
        let token = tokens[index]
        guard token.kind == .string else {
            throw token.kind == .null ? .valueNotFound(Date.self) : .typeMismatch(String.self, found: describe(index))
        }
        if token.isSimpleASCII, token.end - token.start == 20, let date = ISO8601Fast.parse(raw(token)) {
            return date
        }
        let string = try string(token)
        guard let date = try? Date.ISO8601FormatStyle().parse(string) else {
            throw .corrupted("Expected date string to be ISO8601-formatted.")
        }
        return date
    }

    /// JSONDecoder's default `.base64`.
    func decodeData(at index: Int) throws(ValueFailure) -> Data {
        let token = tokens[index]
        guard token.kind == .string else {
            throw token.kind == .null ? .valueNotFound(Data.self) : .typeMismatch(String.self, found: describe(index))
        }
        guard let data = Data(base64Encoded: try string(token)) else {
            throw .corrupted("Encountered Data is not valid Base64.")
        }
        return data
    }

    func decodeURL(at index: Int) throws(ValueFailure) -> URL {
        let token = tokens[index]
        guard token.kind == .string else {
            throw token.kind == .null ? .valueNotFound(URL.self) : .typeMismatch(String.self, found: describe(index))
        }
        guard let url = URL(string: try string(token)) else {
            throw .corrupted("Invalid URL string.")
        }
        return url
    }

    /// A JSON number (not a string) parsed by `Decimal`, as JSONDecoder does.
    func decodeDecimal(at index: Int) throws(ValueFailure) -> Decimal {
        let token = tokens[index]
        guard token.kind == .number else {
            throw token.kind == .null ? .valueNotFound(Decimal.self) : .typeMismatch(Decimal.self, found: describe(index))
        }
        guard JSONScalars.isValidNumber(raw(token)), let decimal = Decimal(string: text(of: token)) else {
            throw .corrupted("The given data was not valid JSON: number \(text(of: token)) is not a valid Decimal.")
        }
        return decimal
    }
}

/// `yyyy-MM-ddTHH:mm:ssZ` with every field in range, in the Gregorian calendar (years 1583 on,
/// where Foundation's calendar is Gregorian too); anything else is left to `ISO8601FormatStyle`.
enum ISO8601Fast {
    static func parse(_ raw: UnsafeRawBufferPointer) -> Date? {
        guard raw.count == 20, raw[4] == UInt8(ascii: "-"), raw[7] == UInt8(ascii: "-"), raw[10] == UInt8(ascii: "T"),
            raw[13] == UInt8(ascii: ":"), raw[16] == UInt8(ascii: ":"), raw[19] == UInt8(ascii: "Z"),
            let year = number(raw, 0, 4), let month = number(raw, 5, 2), let day = number(raw, 8, 2),
            let hour = number(raw, 11, 2), let minute = number(raw, 14, 2), let second = number(raw, 17, 2),
            year >= 1583, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
            hour < 24, minute < 60, second < 60
        else { return nil }
        let days = daysSince1970(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }

    @inline(__always)
    static func number(_ raw: UnsafeRawBufferPointer, _ start: Int, _ length: Int) -> Int? {
        var value = 0
        for index in start..<start + length {
            let digit = raw[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int(digit)
        }
        return value
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 to the date in the proleptic Gregorian calendar (Howard Hinnant's
    /// `days_from_civil`).
    static func daysSince1970(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
