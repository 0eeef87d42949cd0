import Logging
import PostgresNIO

extension ProjectionRunner {
    /// Refuses to set up a version whose schema exists already (it was not created for this version,
    /// which is not registered yet), or whose projection's stable-names schema exists while no version
    /// of the projection is registered: Kappa creates the schemas it later drops, and adopts none.
    /// Runs in the set-up's transaction, under its advisory lock.
    static func refuseForeignSchemas(_ id: ProjectionID, on connection: PostgresConnection, queries: ProjectionQueries, logger: Logger) async throws {
        var versionSchema = false, servingSchema = false, registeredVersions: Int64 = 0
        for try await (schema, serving, registered) in try await connection.query(
            queries.schemaOwnership(id), logger: logger
        ).decode((Bool, Bool, Int64).self) {
            (versionSchema, servingSchema, registeredVersions) = (schema, serving, registered)
        }
        if versionSchema {
            throw ProjectionError(
                .schemaNotOwned, projection: id.name, version: id.version,
                message:
                    "schema \(id.schema.name) exists but was not created for this version; Kappa never adopts a schema (drop or rename it, or choose another projection name)"
            )
        }
        if servingSchema && registeredVersions == 0 {
            throw ProjectionError(
                .schemaNotOwned, projection: id.name, version: id.version,
                message: "schema \(id.serving.name), where this projection's stable names would go, exists and is not Kappa's (choose another projection name)")
        }
    }
}
