/// An error kept only as its description, for errors that are not `Sendable`.
struct SendableErrorBox: Error, Sendable, CustomStringConvertible {
    var description: String
}

/// A one-line account of an encoding or decoding error that names the field at fault.
func describe(_ error: any Error) -> String {
    func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.isEmpty
            ? "the top level"
            : "field '" + codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") + "'"
    }
    switch error {
    case let error as DecodingError:
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])) is missing"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)) is not \(type): \(context.debugDescription)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) is null, expected \(type)"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    case let error as EncodingError:
        switch error {
        case .invalidValue(let value, let context):
            return "\(path(context.codingPath)) has a value that cannot be encoded (\(value)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    default:
        return "\(error)"
    }
}
