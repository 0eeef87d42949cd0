import Foundation
import Hummingbird
import OpenAPIRuntime

/// A request the generated code could not decode, as a 400 Problem naming what is at fault: the body
/// field, or the path parameter or query item that does not have its documented type.
struct BadRequest {
    let problem: Problem

    /// The integer parameters of each operation, which the generated code decodes before the handler
    /// runs; its errors name no parameter, so the one at fault is found here. A test compares this
    /// with openapi.yaml.
    static let integerParameters: [String: [Parameter]] = [
        "listCarts": [.init(name: "limit", location: .query, isRequired: false)],
        "compareVersions": [.init(name: "old", location: .query, isRequired: true), .init(name: "new", location: .query, isRequired: true)],
        "buildVersion": [.init(name: "version", location: .path, isRequired: true)],
        "promoteVersion": [.init(name: "version", location: .path, isRequired: true)],
    ]

    struct Parameter: Hashable, Sendable {
        enum Location: String, Sendable { case query, path }
        var name: String
        var location: Location
        var isRequired: Bool
    }

    init(_ error: ServerError, query: Parameters, path: Parameters) {
        let atFault = Self.integerParameters[error.operationID]?.first { parameter in
            let value = parameter.location == .query ? query[parameter.name[...]] : path[parameter.name[...]]
            return value.map { Int($0) == nil } ?? parameter.isRequired
        }
        if let parameter = atFault {
            let code = parameter.location == .query ? "invalidQuery" : "invalidParameter"
            problem = Problem(code, field: parameter.name, "\(parameter.name) must be an integer\(parameter.isRequired ? ", and is required" : "")")
        } else if Self.integerParameters[error.operationID] != nil {
            // Those operations have no body: what did not decode is a parameter.
            problem = Problem("invalidQuery", "a parameter does not decode: \(error.causeDescription)")
        } else if let decoding = error.underlyingError as? DecodingError {
            problem = Self.problem(decoding)
        } else {
            problem = Problem("invalidRequest", "the request cannot be read: \(error.causeDescription)")
        }
    }

    static func problem(_ error: DecodingError) -> Problem {
        switch error {
        case .keyNotFound(let key, _): return Problem("invalidBody", field: key.stringValue, "\(key.stringValue) is required")
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            let name = context.codingPath.last?.stringValue
            let expected = type == Int.self || type == Int64.self ? "an integer" : type == String.self ? "a string" : "\(type)"
            return Problem("invalidBody", field: name, "\(name ?? "the body") must be \(expected)")
        case .dataCorrupted(let context):
            // Foundation's decoder on Linux also says this, with no field, of a number its field cannot hold.
            return Problem("invalidBody", field: context.codingPath.last?.stringValue, "the body is not valid JSON, or holds a number its field cannot hold")
        @unknown default:
            return Problem("invalidBody", "the body cannot be read")
        }
    }
}
