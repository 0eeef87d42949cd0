import Foundation
import Kappa
import Testing

@Suite("Event registry: encoding, upcasting, typed decoding errors")
struct EventRegistryTests {
    let registry = AccountEvent.registry

    func recorded(type: String, version: Int, json: String, stream: StreamID = "account-7") -> RecordedEvent {
        RecordedEvent(
            id: UUID(), streamID: stream, streamVersion: 3, position: LogPosition(transactionID: 9, globalPosition: 42),
            eventType: type, schemaVersion: version, payload: Data(json.utf8), metadata: .init(), recordedAt: Date())
    }

    @Test func encodesUnderTheStableNameAndVersion() throws {
        let new = try registry.encode(.deposited(.init(cents: 5)), id: UUID(), recordedAt: Date())
        #expect(new.eventType == "MoneyDeposited")
        #expect(new.schemaVersion == 2)
        #expect(String(decoding: new.payload, as: UTF8.self) == #"{"cents":5}"#)
    }

    @Test func upcastsVersion1ToVersion2OnRead() throws {
        let envelope = try registry.decode(recorded(type: "MoneyDeposited", version: 1, json: #"{"amount":"12.50"}"#))
        #expect(envelope?.event == .deposited(MoneyDeposited(cents: 1250)))
        #expect(envelope?.storedSchemaVersion == 1)
    }

    @Test func unknownTypeIsATypedErrorNamingStreamPositionAndType() throws {
        let error = #expect(throws: EventStoreError.self) {
            try registry.decode(recorded(type: "AccountFrozen", version: 1, json: "{}"))
        }
        #expect(error?.code == .unknownEventType)
        #expect(error?.stream == "account-7")
        #expect(error?.position == LogPosition(transactionID: 9, globalPosition: 42))
        #expect(error?.eventType == "AccountFrozen")
    }

    @Test func unknownTypesAreSkippedOnlyWhenAskedTo() throws {
        #expect(try registry.decode(recorded(type: "AccountFrozen", version: 1, json: "{}"), unknownTypes: .skip) == nil)
    }

    @Test func anUndecodablePayloadNamesTheField() throws {
        let error = #expect(throws: EventStoreError.self) {
            try registry.decode(recorded(type: "MoneyWithdrawn", version: 1, json: #"{"cents":"lots"}"#))
        }
        #expect(error?.code == .decodingFailed)
        #expect(error?.message.contains("field 'cents'") == true)
        #expect(error?.message.contains("account-7") == true)
    }

    @Test func aNewerStoredVersionOrAMissingUpcasterIsRefused() throws {
        let newer = #expect(throws: EventStoreError.self) {
            try registry.decode(recorded(type: "MoneyWithdrawn", version: 2, json: #"{"cents":1}"#))
        }
        #expect(newer?.code == .unsupportedSchemaVersion)
        let noPath = EventRegistry<AccountEvent>(payload: \.payload) { $0.register(MoneyDeposited.self, as: AccountEvent.deposited) }
        let missing = #expect(throws: EventStoreError.self) {
            try noPath.decode(recorded(type: "MoneyDeposited", version: 1, json: #"{"amount":"1"}"#))
        }
        #expect(missing?.code == .unsupportedSchemaVersion)
    }

    @Test func anUnencodablePayloadIsRefusedBeforeAnyWrite() throws {
        struct Reading: DomainEvent {
            static let eventType: EventTypeName = "Reading"
            var value: Double
        }
        let registry = EventRegistry<Reading>()
        let error = #expect(throws: EventStoreError.self) {
            try registry.encode(Reading(value: .nan), id: UUID(), recordedAt: Date())
        }
        #expect(error?.code == .encodingFailed)
        #expect(error?.eventType == "Reading")
    }

    @Test func anUnregisteredEventIsRefusedOnEncode() throws {
        let partial = EventRegistry<AccountEvent>(payload: \.payload) { $0.register(AccountOpened.self, as: AccountEvent.opened) }
        #expect(throws: EventStoreError.self) {
            try partial.encode(.withdrawn(.init(cents: 1)), id: UUID(), recordedAt: Date())
        }
    }

    @Test func metadataIsOneFlatObjectWithReservedKeys() throws {
        let correlation = UUID()
        let metadata = EventMetadata(correlationID: correlation, custom: ["userId": "u-1"])
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(metadata)) as? [String: String]
        #expect(json == ["correlationId": correlation.uuidString, "userId": "u-1"])
        #expect(try JSONDecoder().decode(EventMetadata.self, from: JSONEncoder().encode(metadata)) == metadata)
        #expect(throws: (any Error).self) { try JSONEncoder().encode(EventMetadata(custom: ["causationId": "x"])) }
    }
}

@Suite("Names are validated")
struct NameValidationTests {
    @Test(arguments: ["", String(repeating: "a", count: 201), "cart 1", "cärt", "cart\n1", "a;drop"])
    func badStreamIDs(_ text: String) {
        let error = #expect(throws: EventStoreError.self) { try StreamID(text) }
        #expect(error?.code == .invalidStreamID)
    }

    @Test(arguments: ["cart-1", "order:2026/11@eu", "x"])
    func goodStreamIDs(_ text: String) throws {
        #expect(try StreamID(text).rawValue == text)
    }

    @Test(arguments: ["", "1Thing", "Item Added", "a/b", String(repeating: "A", count: 129)])
    func badEventTypeNames(_ text: String) {
        let error = #expect(throws: EventStoreError.self) { try EventTypeName(text) }
        #expect(error?.code == .invalidEventType)
    }
}
