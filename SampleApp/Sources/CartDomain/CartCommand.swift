import Foundation

/// What a customer asks of a cart. Times come in the command (from an injected clock), never from
/// the domain logic.
public enum CartCommand: Sendable, Equatable {
    case open(customer: String, at: Date)
    case addItem(sku: String, quantity: Int, at: Date)
    case changeQuantity(sku: String, quantity: Int)
    case removeItem(sku: String)
    case checkOut(at: Date)
    case abandon(at: Date)
}

/// A cart's life: not opened yet, open with its lines, checked out, or abandoned.
public enum CartState: Sendable, Equatable {
    public struct Line: Sendable, Equatable {
        public var quantity: Int
        public var unitPrice: Int
    }

    case notOpened
    case open(lines: [String: Line])
    case checkedOut(totalCents: Int)
    case abandoned

    /// The value of the lines of an open cart, in cents; `nil` when it does not fit an `Int`.
    public var totalCents: Int? {
        switch self {
        case .open(let lines): Self.value(of: lines.values)
        case .checkedOut(let total): total
        case .notOpened, .abandoned: 0
        }
    }

    /// The sum of quantity × unit price over `lines`, in cents; `nil` when a product or the sum
    /// overflows `Int` (lines come from the log, which may hold any `Int`).
    public static func value(of lines: some Sequence<Line>) -> Int? {
        var total = 0
        for line in lines {
            let (value, productOverflowed) = line.quantity.multipliedReportingOverflow(by: line.unitPrice)
            let (sum, sumOverflowed) = total.addingReportingOverflow(value)
            guard !productOverflowed, !sumOverflowed else { return nil }
            total = sum
        }
        return total
    }
}
