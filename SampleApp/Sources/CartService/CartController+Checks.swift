import CartDomain
import Foundation
import Hummingbird

/// What every request is checked for before its data is used: the operator token on the operator
/// requests, and text fields free of control characters.
extension CartController {
    /// Refuses a request that does not send the operator token as `Authorization: Bearer <token>`
    /// (401, answered by ``ErrorMiddleware``).
    func requireOperator(_ request: Request) throws {
        guard let header = request.headers[.authorization] else {
            throw OperatorTokenRefused(message: "this is an operator request: send Authorization: Bearer <operator token>")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
            Self.sameToken(parts[1].trimmingCharacters(in: .whitespaces), configuration.operatorToken)
        else {
            throw OperatorTokenRefused(message: "the operator token is not the one this service was given")
        }
    }

    /// Whether the tokens are equal, comparing every byte whatever the first difference (no timing
    /// hint about how much of a guess was right). An empty expected token matches nothing.
    static func sameToken(_ presented: String, _ expected: String) -> Bool {
        let (a, b) = (Array(presented.utf8), Array(expected.utf8))
        guard !b.isEmpty, a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// Refuses `text` with 422 naming `field` when it holds a control character.
    func checkText(_ text: String, field: String) throws {
        if CartError.hasControlCharacter(text) { throw ControlCharacterRefused(field: field) }
    }

    /// Checks every `String` property of a decoded body, so a field added later is checked too. The
    /// bodies use synthesized `Codable`, so a property's name is its JSON key.
    func checkTexts(of body: some Decodable) throws {
        for child in Mirror(reflecting: body).children {
            if let field = child.label, let text = child.value as? String { try checkText(text, field: field) }
        }
    }
}

/// An operator request without the operator token, or with another one: 401.
struct OperatorTokenRefused: Error {
    let message: String
}

/// A request text field holding a control character: 422 naming the field.
struct ControlCharacterRefused: Error {
    let field: String
}
