import Kappa

/// Given/when/then for a ``Kappa/Decider``, pure and synchronous:
///
/// ```swift
/// let spec = DeciderSpecification(cartDecider)
/// try spec.given([.opened(…)]).when(.addItem(…)).then([.itemAdded(…)])
/// try spec.given([]).when(.checkOut).thenThrows(CartError.empty)
/// ```
/// A failed expectation throws ``SpecificationFailure``, which any test framework reports.
public struct DeciderSpecification<Command: Sendable, Event: Sendable, State: Sendable>: Sendable {
    /// The decider under test.
    public let decider: Decider<Command, Event, State>

    /// A specification of `decider`.
    public init(_ decider: Decider<Command, Event, State>) {
        self.decider = decider
    }

    /// The history the command is decided against.
    public func given(_ events: [Event]) -> Given {
        Given(decider: decider, state: decider.fold(events))
    }

    /// The state after a history; ``when(_:)`` decides a command against it.
    public struct Given: Sendable {
        let decider: Decider<Command, Event, State>
        /// The state after the given events.
        public let state: State

        /// Decides `command` against the given history.
        public func when(_ command: Command) -> Then {
            Then(decider: decider, before: state, outcome: Result { try decider.decide(command, state) })
        }
    }

    /// What `decide` returned or threw, to check with ``then(_:sourceLocation:line:)``,
    /// ``thenThrows(_:sourceLocation:line:)`` or ``thenState(_:sourceLocation:line:)``.
    public struct Then {
        let decider: Decider<Command, Event, State>
        let before: State
        /// The events decided, or the error thrown.
        public let outcome: Result<[Event], any Error>

        /// Expects exactly `expected`.
        public func then(_ expected: [Event], sourceLocation: String = #fileID, line: Int = #line) throws where Event: Equatable {
            let events = try decided(sourceLocation, line)
            guard events == expected else {
                throw SpecificationFailure("expected events \(expected)\n  but decided \(events)", file: sourceLocation, line: line)
            }
        }

        /// Expects `decide` to throw an error equal to `expected`.
        public func thenThrows<Failure: Error & Equatable>(_ expected: Failure, sourceLocation: String = #fileID, line: Int = #line) throws {
            switch outcome {
            case .success(let events):
                throw SpecificationFailure("expected error \(expected)\n  but decided \(events)", file: sourceLocation, line: line)
            case .failure(let error as Failure) where error == expected:
                return
            case .failure(let error):
                throw SpecificationFailure("expected error \(expected)\n  but got \(error)", file: sourceLocation, line: line)
            }
        }

        /// Expects the state after the decided events to equal `expected`.
        public func thenState(_ expected: State, sourceLocation: String = #fileID, line: Int = #line) throws where State: Equatable {
            let state = decider.fold(try decided(sourceLocation, line), from: before)
            guard state == expected else {
                throw SpecificationFailure("expected state \(expected)\n  but got \(state)", file: sourceLocation, line: line)
            }
        }

        private func decided(_ file: String, _ line: Int) throws -> [Event] {
            switch outcome {
            case .success(let events): return events
            case .failure(let error): throw SpecificationFailure("expected events but decide threw \(error)", file: file, line: line)
            }
        }
    }
}

/// A given/when/then expectation that did not hold.
public struct SpecificationFailure: Error, CustomStringConvertible {
    /// What was expected and what happened instead.
    public let message: String
    /// The file of the failed expectation, as `#fileID` gives it.
    public let file: String
    /// The line of the failed expectation.
    public let line: Int

    /// A failure of the expectation at `file`:`line`.
    public init(_ message: String, file: String, line: Int) {
        self.message = message
        self.file = file
        self.line = line
    }

    public var description: String { "\(file):\(line): \(message)" }
}
