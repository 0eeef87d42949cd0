import Foundation
import Kappa
import KappaTesting
import Testing

@Suite("Deciders: given/when/then")
struct DeciderTests {
    let spec = DeciderSpecification(accountDecider)

    @Test func opensAnAccount() throws {
        try spec.given([]).when(.open(owner: "ada")).then([.opened(AccountOpened(owner: "ada"))])
    }

    @Test func depositsAndTracksTheBalance() throws {
        try spec.given([.opened(.init(owner: "ada")), .deposited(.init(cents: 500))])
            .when(.withdraw(cents: 200))
            .thenState(.open(balance: 300))
    }

    @Test func brokenRulesAreTypedErrors() throws {
        try spec.given([]).when(.deposit(cents: 5)).thenThrows(AccountError.notOpen)
        try spec.given([.opened(.init(owner: "ada"))]).when(.withdraw(cents: 1)).thenThrows(AccountError.insufficientFunds(balance: 0))
        try spec.given([.opened(.init(owner: "ada"))]).when(.open(owner: "bob")).thenThrows(AccountError.alreadyOpen)
    }

    @Test func aWrongExpectationFailsWithTheDifference() throws {
        let failure = #expect(throws: SpecificationFailure.self) {
            try spec.given([]).when(.open(owner: "ada")).then([.opened(AccountOpened(owner: "bob"))])
        }
        #expect(failure?.message.contains("bob") == true)
        #expect(throws: SpecificationFailure.self) {
            try spec.given([]).when(.deposit(cents: 1)).then([])
        }
    }
}

@Suite("Command handler on the in-memory store")
struct InMemoryCommandHandlerTests {
    func handler(_ store: InMemoryEventStore) -> CommandHandler<AccountCommand, AccountEvent, AccountState> {
        CommandHandler(decider: accountDecider, registry: AccountEvent.registry, store: store, logger: testLogger)
    }

    @Test func roundTripThroughTheStore() async throws {
        let spec = CommandHandlerSpecification(handler(InMemoryEventStore()))
        try await spec.given([.opened(.init(owner: "ada")), .deposited(.init(cents: 100))], on: "account-1")
            .when(.withdraw(cents: 40)).then([.withdrawn(.init(cents: 40))])
        try await spec.given([.opened(.init(owner: "ada"))], on: "account-2")
            .when(.withdraw(cents: 40)).thenThrows(AccountError.insufficientFunds(balance: 0))
    }

    @Test func injectedClockAndIDsStampTheEvents() async throws {
        let store = InMemoryEventStore()
        let id = UUID(uuidString: "00000000-0000-0000-0000-00000000000A")!
        let instant = Date(timeIntervalSince1970: 1_700_000_000)
        let handler = CommandHandler(
            decider: accountDecider, registry: AccountEvent.registry, store: store,
            makeEventID: { id }, now: { instant }, logger: testLogger)
        let result = try await handler.handle(.open(owner: "ada"), on: "account-1")
        #expect(result.streamVersion == 1)
        #expect(store.allEvents.map(\.id) == [id])
        #expect(store.allEvents.map(\.recordedAt) == [instant])
    }

    @Test func concurrentCommandsConvergeThroughRetries() async throws {
        let store = InMemoryEventStore()
        let handler = handler(store)
        _ = try await handler.handle(.open(owner: "ada"), on: "account-1")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<10 { _ = try await handler.handle(.deposit(cents: 1), on: "account-1") } }
            }
            try await group.waitForAll()
        }
        #expect(try await handler.load("account-1").state == .open(balance: 80))
        #expect(store.allEvents.map(\.streamVersion) == Array(1...81))
    }
}
