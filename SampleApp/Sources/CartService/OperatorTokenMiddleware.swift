import Foundation
import HTTPTypes
import OpenAPIRuntime

/// Refuses an operator request (the operations `openapi.yaml` marks with the `operatorToken`
/// security scheme) that does not send the service's operator token as `Authorization: Bearer
/// <token>`: 401 with `WWW-Authenticate: Bearer`, before the request is decoded.
struct OperatorTokenMiddleware: ServerMiddleware {
    /// The operations that need the token: those with `security: [{operatorToken: []}]` in the spec
    /// (a test compares the two).
    static let operations: Set<String> = ["buildVersion", "compareVersions", "promoteVersion", "rollBack"]

    let token: String

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        guard Self.operations.contains(operationID) else { return try await next(request, body, metadata) }
        guard let header = request.headerFields[.authorization] else {
            return Self.refusal("this is an operator request: send Authorization: Bearer <operator token>")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", Self.sameToken(parts[1].trimmingCharacters(in: .whitespaces), token) else {
            return Self.refusal("the operator token is not the one this service was given")
        }
        return try await next(request, body, metadata)
    }

    /// The spec's 401: a Problem with code `operatorTokenRequired`.
    static func refusal(_ message: String) -> (HTTPResponse, HTTPBody?) {
        let body = (try? problemJSON(Problem("operatorTokenRequired", message))) ?? Data()
        let response = HTTPResponse(status: .unauthorized, headerFields: [.wwwAuthenticate: "Bearer", .contentType: "application/json"])
        return (response, HTTPBody(body))
    }

    /// Whether the tokens are equal, comparing every byte whatever the first difference (no timing
    /// hint about how much of a guess was right). An empty expected token matches nothing.
    static func sameToken(_ presented: String, _ expected: String) -> Bool {
        let (a, b) = (Array(presented.utf8), Array(expected.utf8))
        guard !b.isEmpty, a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// A Problem as the service writes it outside the generated code (sorted keys, like the generated encoder).
func problemJSON(_ problem: Problem) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(problem)
}
