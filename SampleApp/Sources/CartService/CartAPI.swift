import CartDomain
import Foundation
import Kappa
import KappaPostgres

/// The JSON the HTTP API reads and writes.
enum CartAPI {
    struct OpenCart: Decodable { var customer: String }
    struct AddItem: Decodable {
        var sku: String
        var quantity: Int
    }
    struct ChangeQuantity: Decodable { var quantity: Int }

    /// Every command's answer: the cart and the log position to read one's own write at.
    struct Accepted: Encodable {
        var cartId: String
        var position: String?
        var events: Int
    }

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
        struct Detail: Encodable {
            var code: String
            var field: String?
            var message: String
        }
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

extension CartAPI {
    struct ReadModelView: Encodable {
        var name: String
        var activeVersion: Int?
        /// The versions whose code the service holds (that `build` can start).
        var availableVersions: [Int]
        var versions: [VersionView]
    }

    struct VersionView: Encodable {
        var version: Int
        /// building, caught_up, active, retired.
        var lifecycle: String
        /// rebuilding, catching_up, live, stopped, failed.
        var state: String
        var checkpoint: String
        var eventsApplied: Int64
        var lagEvents: Int64
        var deadLetters: Int64
        var failedError: String?
        /// While this service rebuilds the version in bulk.
        var rebuild: RebuildView?
    }

    struct RebuildView: Encodable {
        var eventsDone: Int
        var eventsTotal: Int
        var eventsPerSecond: Int
    }

    struct ComparisonView: Encodable {
        struct Table: Encodable {
            var name: String
            var rowsInOld: Int, rowsInNew: Int, rowsOnlyInOld: Int, rowsOnlyInNew: Int
            var columnsOnlyInOld: [String], columnsOnlyInNew: [String]
        }
        var oldVersion: Int, newVersion: Int
        var samePosition: Bool
        var differingRows: Int
        var tables: [Table]
        var tablesOnlyInOld: [String], tablesOnlyInNew: [String]

        init(_ c: ProjectionComparison) {
            (oldVersion, newVersion, samePosition, differingRows) = (c.oldVersion, c.newVersion, c.samePosition, c.differingRows)
            tables = c.tables.map {
                Table(
                    name: $0.name, rowsInOld: $0.rowsInOld, rowsInNew: $0.rowsInNew, rowsOnlyInOld: $0.rowsOnlyInOld,
                    rowsOnlyInNew: $0.rowsOnlyInNew, columnsOnlyInOld: $0.columnsOnlyInOld, columnsOnlyInNew: $0.columnsOnlyInNew)
            }
            (tablesOnlyInOld, tablesOnlyInNew) = (c.tablesOnlyInOld, c.tablesOnlyInNew)
        }
    }

    struct EventView: Encodable {
        var position: String
        var streamVersion: Int64
        var type: String
        var recordedAt: Date
        /// The stored JSON.
        var payload: String
    }
}
