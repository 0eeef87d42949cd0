import Foundation
import Kappa

/// Given/when/then through a real ``Kappa/CommandHandler`` and store: the given events are appended
/// to the store, the command runs through load → decide → append, and the expectation is checked
/// against what the store then holds, decoded back through the registry.
///
/// ```swift
/// let spec = CommandHandlerSpecification(handler)
/// try await spec.given([.opened(…)], on: "cart-1").when(.addItem(…)).then([.itemAdded(…)])
/// ```
public struct CommandHandlerSpecification<Command: Sendable, Event: Sendable, State: Sendable>: Sendable {
    /// The handler under test; the given events go into its store.
    public let handler: CommandHandler<Command, Event, State>

    /// A specification that runs commands through `handler` and its store.
    public init(_ handler: CommandHandler<Command, Event, State>) {
        self.handler = handler
    }

    /// Appends `events` to `stream` (which must be new) as the history.
    public func given(_ events: [Event], on stream: StreamID) async throws -> Given {
        if !events.isEmpty {
            let encoded = try events.map { try handler.registry.encode($0, id: UUID(), recordedAt: Date()) }
            _ = try await handler.store.append(encoded, to: stream, expectedVersion: .noStream)
        }
        return Given(handler: handler, stream: stream, version: Int64(events.count))
    }

    /// A stream holding the given history; ``when(_:)`` runs a command on it.
    public struct Given: Sendable {
        let handler: CommandHandler<Command, Event, State>
        let stream: StreamID
        let version: Int64

        /// Handles `command` on the stream.
        public func when(_ command: Command) async -> Then {
            let outcome: Result<[Event], any Error>
            do {
                _ = try await handler.handle(command, on: stream)
                var appended: [Event] = []
                for try await batch in handler.store.streamEvents(stream, from: version + 1) {
                    for recorded in batch {
                        if let envelope = try handler.registry.decode(recorded) { appended.append(envelope.event) }
                    }
                }
                outcome = .success(appended)
            } catch {
                // A refused command must leave the stream as it was.
                let written = (try? await handler.store.readStream(stream, from: version + 1, limit: 1)) ?? []
                outcome = .failure(
                    written.isEmpty
                        ? error
                        : SpecificationFailure(
                            "handling threw \(error) but the stream grew past version \(version)", file: #fileID, line: #line))
            }
            return Then(outcome: outcome)
        }
    }

    /// The outcome of a command, to check with ``then(_:sourceLocation:line:)`` or
    /// ``thenThrows(_:sourceLocation:line:)``.
    public struct Then: Sendable {
        /// The events the store holds after the given history, or the error thrown.
        public let outcome: Result<[Event], any Error>

        /// Expects the store to hold exactly `expected` after the history.
        public func then(_ expected: [Event], sourceLocation: String = #fileID, line: Int = #line) throws where Event: Equatable {
            switch outcome {
            case .success(let events) where events == expected: return
            case .success(let events):
                throw SpecificationFailure("expected the store to hold \(expected)\n  but it holds \(events)", file: sourceLocation, line: line)
            case .failure(let error):
                throw SpecificationFailure("expected events but handling threw \(error)", file: sourceLocation, line: line)
            }
        }

        /// Expects handling to throw an error equal to `expected`, with nothing appended.
        public func thenThrows<Failure: Error & Equatable>(_ expected: Failure, sourceLocation: String = #fileID, line: Int = #line) throws {
            switch outcome {
            case .failure(let error as Failure) where error == expected: return
            case .failure(let error):
                throw SpecificationFailure("expected error \(expected)\n  but got \(error)", file: sourceLocation, line: line)
            case .success(let events):
                throw SpecificationFailure("expected error \(expected)\n  but the store holds \(events)", file: sourceLocation, line: line)
            }
        }
    }
}
