import Synchronization

/// A suffix for the names of Kappa's prepared statements, moved on after a failed preparation (see
/// `PostgresConnection.executeAll`), so that no connection keeps failing a statement it could not
/// prepare once.
enum PreparedStatementGeneration {
    private static let current = Atomic<Int>(0)

    static func advance() { current.add(1, ordering: .relaxed) }

    /// `name` in the current generation (within PostgreSQL's 63 bytes: the names are at most 58, the suffix 3).
    static func name(_ name: String) -> String {
        let generation = current.load(ordering: .relaxed) % 256
        return generation == 0 ? name : "\(name)_\(String(generation, radix: 16))"
    }
}
