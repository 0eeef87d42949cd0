import CartDomain

/// The spec's error body, `{"error": {"code", "field", "message"}}`.
typealias Problem = Components.Schemas.Problem

extension Problem {
    init(_ code: String, field: String? = nil, _ message: String) {
        self.init(error: .init(code: code, field: field, message: message))
    }

    /// A text field holding a control character (422).
    static func controlCharacter(_ field: String) -> Problem {
        Problem("controlCharacter", field: field, "\(field) must not contain control characters (U+0000–U+001F, U+007F–U+009F)")
    }

    /// The cart's id in a path that is not a UUID: no such cart (404).
    static func noCart(_ id: String) -> Problem { Problem("notFound", "no cart \(id): cart ids are UUIDs") }
}

/// What a cart command's answer can be; every command's generated output has these cases, so one
/// function (``CartHandler/handle(_:cart:as:)``) answers them all.
protocol CommandOutput {
    static func ok(_ response: Components.Responses.Accepted) -> Self
    static func notFound(_ response: Components.Responses.NotFound) -> Self
    static func conflict(_ response: Components.Responses.Conflict) -> Self
    static func unprocessableContent(_ response: Components.Responses.Unprocessable) -> Self
}

extension Operations.AddItem.Output: CommandOutput {}
extension Operations.ChangeQuantity.Output: CommandOutput {}
extension Operations.RemoveItem.Output: CommandOutput {}
extension Operations.CheckOut.Output: CommandOutput {}
extension Operations.AbandonCart.Output: CommandOutput {}

extension CommandOutput {
    /// A refused command: 404 for a cart never opened, 409 for one whose state refuses it, else 422.
    static func refused(_ error: CartError) -> Self {
        let problem = Problem("\(error.code)", field: error.field, error.message)
        return switch error.code {
        case .notOpened: .notFound(.init(body: .json(problem)))
        case .cartClosed, .emptyCart, .alreadyOpened, .totalOutOfRange: .conflict(.init(body: .json(problem)))
        default: .unprocessableContent(.init(body: .json(problem)))
        }
    }
}
