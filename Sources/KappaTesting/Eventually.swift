/// Waits until `condition` holds, checking it every 20 ms, for at most `timeout` — the way a test
/// awaits what another task, process or projection does, instead of sleeping a fixed time.
///
/// ```swift
/// try await eventually("v2 has caught up", timeout: .seconds(60)) {
///     try await runtime.versions.activeVersion(of: "cart_summary") == 2
/// }
/// ```
/// - Throws: ``ConditionTimedOut`` naming `what`, or what `condition` throws.
public func eventually(
    _ what: String, timeout: Duration = .seconds(20), _ condition: @Sendable () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw ConditionTimedOut(condition: what, timeout: timeout) }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// ``eventually(_:timeout:_:)`` gave up: the condition did not hold in time.
public struct ConditionTimedOut: Error, CustomStringConvertible {
    /// What was waited for: ``eventually(_:timeout:_:)``'s `what`.
    public var condition: String
    /// How long it was waited for.
    public var timeout: Duration
    public var description: String { "timed out after \(timeout) waiting for: \(condition)" }
}
