/// An aggregate as a pure value: how it decides on commands and how events change its state.
///
/// `decide` enforces the business rules and returns the events a command causes (or throws a domain
/// error); `evolve` folds one event into the state. Neither reads a clock, makes ids or does I/O:
/// pass anything like that in the command.
///
/// ```swift
/// let cart = Decider<CartCommand, CartEvent, CartState>(
///     initialState: .empty,
///     decide: { command, state in … },
///     evolve: { state, event in … }
/// )
/// ```
public struct Decider<Command: Sendable, Event: Sendable, State: Sendable>: Sendable {
    /// The state of a stream that has no events.
    public var initialState: State
    /// The events `command` causes in `state`; throws a domain error when the command breaks a rule.
    public var decide: @Sendable (Command, State) throws -> [Event]
    /// The state after one event.
    public var evolve: @Sendable (State, Event) -> State

    /// A decider from its initial state and its two functions, which must be pure (no clock, ids or I/O).
    public init(
        initialState: State,
        decide: @escaping @Sendable (Command, State) throws -> [Event],
        evolve: @escaping @Sendable (State, Event) -> State
    ) {
        self.initialState = initialState
        self.decide = decide
        self.evolve = evolve
    }

    /// The state after `events`, starting from `state` (the initial state when omitted).
    public func fold(_ events: some Sequence<Event>, from state: State? = nil) -> State {
        events.reduce(state ?? initialState, evolve)
    }
}
