import Foundation
import Kappa

// A small bank account: the domain the framework's own tests decide with.

struct AccountOpened: DomainEvent, Equatable {
    static let eventType: EventTypeName = "AccountOpened"
    var owner: String
}

/// Version 2: the amount is in integer minor units. Version 1 stored a decimal string ("12.50").
struct MoneyDeposited: DomainEvent, Equatable {
    static let eventType: EventTypeName = "MoneyDeposited"
    static let schemaVersion = 2
    var cents: Int
}

struct MoneyDepositedV1: Codable {
    var amount: String
}

struct MoneyWithdrawn: DomainEvent, Equatable {
    static let eventType: EventTypeName = "MoneyWithdrawn"
    var cents: Int
}

enum AccountEvent: Equatable, Sendable {
    case opened(AccountOpened)
    case deposited(MoneyDeposited)
    case withdrawn(MoneyWithdrawn)

    var payload: any DomainEvent {
        switch self {
        case .opened(let event): event
        case .deposited(let event): event
        case .withdrawn(let event): event
        }
    }

    static let registry = EventRegistry<AccountEvent>(payload: \.payload) {
        $0.register(AccountOpened.self, as: AccountEvent.opened)
        $0.register(
            MoneyDeposited.self, as: AccountEvent.deposited,
            upcasters: [
                .from(1, MoneyDepositedV1.self) { old in
                    let parts = old.amount.split(separator: ".")
                    let cents = Int(parts[0])! * 100 + (parts.count > 1 ? Int(parts[1])! : 0)
                    return MoneyDeposited(cents: cents)
                }
            ])
        $0.register(MoneyWithdrawn.self, as: AccountEvent.withdrawn)
    }
}

enum AccountCommand: Sendable {
    case open(owner: String)
    case deposit(cents: Int)
    case withdraw(cents: Int)
}

enum AccountState: Equatable, Sendable {
    case unopened
    case open(balance: Int)
}

enum AccountError: Error, Equatable {
    case alreadyOpen, notOpen, nonPositiveAmount
    case insufficientFunds(balance: Int)
}

let accountDecider = Decider<AccountCommand, AccountEvent, AccountState>(
    initialState: .unopened,
    decide: { command, state in
        switch (command, state) {
        case (.open, .open): throw AccountError.alreadyOpen
        case (.open(let owner), .unopened): return [.opened(AccountOpened(owner: owner))]
        case (.deposit, .unopened), (.withdraw, .unopened): throw AccountError.notOpen
        case (.deposit(let cents), .open):
            guard cents > 0 else { throw AccountError.nonPositiveAmount }
            return [.deposited(MoneyDeposited(cents: cents))]
        case (.withdraw(let cents), .open(let balance)):
            guard cents > 0 else { throw AccountError.nonPositiveAmount }
            guard cents <= balance else { throw AccountError.insufficientFunds(balance: balance) }
            return [.withdrawn(MoneyWithdrawn(cents: cents))]
        }
    },
    evolve: { state, event in
        switch (state, event) {
        case (.unopened, .opened): .open(balance: 0)
        case (.open(let balance), .deposited(let e)): .open(balance: balance + e.cents)
        case (.open(let balance), .withdrawn(let e)): .open(balance: balance - e.cents)
        default: state
        }
    }
)
