import PostgresNIO

/// `BEGIN`, `body`, `COMMIT` on `connection` — or `ROLLBACK` when `body` throws, unless the
/// connection has closed (the server rolled the transaction back already, and a statement written
/// to a closed connection is never answered by postgres-nio 1.33; see ``ConnectionGuard``).
/// Used instead of `PostgresClient.withTransaction`, whose `ROLLBACK` is sent regardless.
///
/// - Parameter send: Sends one of the three statements (guarded or not, translating errors or not:
///   the caller's choice). Errors `body` throws come back unchanged, after the rollback.
nonisolated(nonsending) func inTransaction<R>(
    on connection: PostgresConnection, send: (PostgresQuery) async throws -> Void, _ body: () async throws -> R
) async throws -> R {
    try await send("BEGIN")
    let result: R
    do {
        result = try await body()
    } catch {
        if !connection.isClosed { try? await send("ROLLBACK") }
        throw error
    }
    try await send("COMMIT")
    return result
}
