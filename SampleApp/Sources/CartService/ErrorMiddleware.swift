import Foundation
import Hummingbird
import NIOCore
import OpenAPIRuntime

/// Every error the generated code or a handler throws as the spec's Problem: a request that does not
/// decode is a 400 naming the field, parameter or query item; a body over the limit a 413; anything
/// unexpected is logged and answered 500 without its details.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as ServerError where error.operationInput == nil {
            // The generated code could not decode the request: the handler never ran.
            let problem = BadRequest(error, query: request.uri.queryParameters, path: context.parameters)
            return try Self.response(error.httpStatus.code < 500 ? error.httpStatus : .badRequest, problem.problem)
        } catch let error as ServerError where (400..<500).contains(error.httpStatus.code) {
            return try Self.response(error.httpStatus, Problem("invalidRequest", "the request cannot be answered: \(error.causeDescription)"))
        } catch let error as HTTPError where error.status == .contentTooLarge {
            return try Self.response(.contentTooLarge, Problem("bodyTooLarge", "the request body is larger than the service accepts"))
        } catch is NIOTooManyBytesError {
            return try Self.response(.contentTooLarge, Problem("bodyTooLarge", "the request body is larger than the service accepts"))
        } catch let error as HTTPError {
            return try Self.response(error.status, Problem("http\(error.status.code)", error.body ?? error.status.reasonPhrase))
        } catch {
            let underlying = (error as? ServerError)?.underlyingError ?? error
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: underlying))", "path": "\(request.uri.path)"])
            return try Self.response(.internalServerError, Problem("internal", "the request could not be served; see the service's log"))
        }
    }

    static func response(_ status: HTTPResponse.Status, _ problem: Problem) throws -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try problemJSON(problem))))
    }
}

/// Prepares a request for the generated code: reads the whole body, up to the service's limit (a
/// longer one is refused with 413 without being read further), and, since the service speaks JSON
/// only, reads any body as JSON whatever its `Content-Type` (`curl -d` sends a form's) and answers
/// JSON whatever the `Accept` header asks for.
struct JSONRequestMiddleware<Context: RequestContext>: RouterMiddleware {
    let maximumBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: maximumBodyBytes)
        var head = request.head
        head.headerFields[.accept] = nil
        if body.readableBytes > 0 { head.headerFields[.contentType] = "application/json" }
        return try await next(Request(head: head, body: .init(buffer: body)), context)
    }
}
