import Foundation

/// Why a value could not be decoded, before its coding path is known (so the common path builds
/// no path). Thrown with typed throws, it costs nothing unless thrown.
enum ValueFailure: Error, @unchecked Sendable {
    case typeMismatch(Any.Type, found: String)
    case valueNotFound(Any.Type)
    case corrupted(String)

    func decodingError(at path: PayloadCodingPath) -> DecodingError {
        switch self {
        case .typeMismatch(let type, let found):
            .typeMismatch(
                type,
                DecodingError.Context(
                    codingPath: path.keys, debugDescription: "Expected to decode \(type) but found \(found) instead."))
        case .valueNotFound(let type):
            .valueNotFound(
                type,
                DecodingError.Context(
                    codingPath: path.keys, debugDescription: "Cannot get value of type \(type) -- found null value instead"))
        case .corrupted(let message):
            .dataCorrupted(DecodingError.Context(codingPath: path.keys, debugDescription: message))
        }
    }
}
