import CartDomain
import Foundation
import Kappa

/// The JSON the HTTP API reads and writes.
enum CartAPI {
    struct OpenCart: Decodable { var customer: String }
    struct AddItem: Decodable { var sku: String; var quantity: Int }
    struct ChangeQuantity: Decodable { var quantity: Int }

    /// Every command's answer: the cart and the log position to read one's own write at.
    struct Accepted: Encodable { var cartId: String; var position: String?; var events: Int }

    struct CartView: Encodable {
        var cartId: String
        var customer: String
        var status: String
        var items: Int
        var totalCents: Int64
        /// Only when v2 serves.
        var secondsToCheckout: Double?
        var abandonedValueCents: Int64?
    }

    struct ErrorBody: Encodable {
        struct Detail: Encodable { var code: String; var field: String?; var message: String }
        var error: Detail
    }

    struct ProjectionView: Encodable {
        var name: String
        var version: Int
        var state: String
        var checkpoint: String
        var lagEvents: Int64
        var eventsApplied: Int64
        var deadLetters: Int64
    }
}

extension LogPosition {
    /// Parses `transaction/position`, as positions are printed.
    init?(parsing text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let transaction = UInt64(parts[0]), let position = Int64(parts[1]) else { return nil }
        self.init(transactionID: transaction, globalPosition: position)
    }
}
