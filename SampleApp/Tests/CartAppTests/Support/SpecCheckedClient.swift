import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// A test client that checks every answer against `openapi.yaml` (``OpenAPISpecification``): a
/// status the operation does not document, a missing required header or a body that does not match
/// its schema is a test issue, wherever the test sent the request from.
struct SpecCheckedClient: TestClientProtocol {
    let client: any TestClientProtocol

    var port: Int? { client.port }

    func executeRequest(uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?) async throws -> TestResponse {
        let response = try await client.executeRequest(uri: uri, method: method, headers: headers, body: body)
        let problems = OpenAPISpecification.shared.problems(
            method, uri, status: Int(response.status.code), headers: response.headers, body: Data(response.body.readableBytesView))
        for problem in problems { Issue.record("the answer is not what openapi.yaml documents: \(problem)") }
        return response
    }
}

extension TestClientProtocol {
    /// This client, checking every answer against the spec.
    var checked: SpecCheckedClient { SpecCheckedClient(client: self) }
}
