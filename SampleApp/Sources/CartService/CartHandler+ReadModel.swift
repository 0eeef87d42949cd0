import CartReadModels
import Foundation
import Kappa
import KappaPostgres

/// The read model's migration by replay over HTTP: its versions with progress, starting a new version
/// in the running service, comparing two, promoting one, rolling back. The terminal front end uses
/// these; all but the first are operator requests (``OperatorTokenMiddleware``).
extension CartHandler {
    /// The read-model versions whose code this service holds.
    var knownVersions: [any Projection] { allVersions(configuration) }

    func getReadModel(_ input: Operations.GetReadModel.Input) async throws -> Operations.GetReadModel.Output {
        let name = readModel.name
        let rows = try await runtime.versions.versions(of: name)
        let statuses = try await runtime.status().filter { $0.name == name }
        let progress = runtime.rebuildProgress().filter { $0.projection == name }
        let versions = try rows.filter { $0.lifecycle != .dropped }.map { row in
            let status = statuses.first { $0.version == row.version }
            guard let lifecycle = Components.Schemas.VersionLifecycle(rawValue: row.lifecycle.rawValue) else {
                throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "openapi.yaml does not list the lifecycle \(row.lifecycle)"))
            }
            return Components.Schemas.ReadModelVersion(
                version: row.version, lifecycle: lifecycle, state: try Self.state(status?.state ?? row.state), checkpoint: "\(row.checkpoint)",
                eventsApplied: row.eventsApplied, lagEvents: status?.lagEvents ?? 0, deadLetters: status?.deadLetters ?? 0,
                failedError: status?.failedError,
                rebuild: progress.first { $0.version == row.version }.map {
                    .init(eventsDone: Int64($0.eventsDone), eventsTotal: Int64($0.eventsTotal), eventsPerSecond: Int64($0.eventsPerSecond))
                })
        }
        return .ok(
            .init(
                body: .json(
                    .init(
                        name: name, activeVersion: rows.first { $0.lifecycle == .active }?.version,
                        availableVersions: knownVersions.map(\.version), versions: versions))))
    }

    func buildVersion(_ input: Operations.BuildVersion.Input) async throws -> Operations.BuildVersion.Output {
        let version = input.path.version
        guard version >= 1 else { return .badRequest(.init(body: .json(.versionFromOne))) }
        guard let projection = knownVersions.first(where: { $0.version == version }) else {
            return .notFound(
                .init(body: .json(Problem("unknownVersion", field: "version", "this service has no code for version \(version) of \(readModel.name)"))))
        }
        guard configuration.runProjections else {
            return .conflict(
                .init(body: .json(Problem("projectionsRunElsewhere", "the projections run in a worker process; start version \(version) there"))))
        }
        do {
            try await runtime.start(projection)
        } catch let error as ProjectionError where error.code == .duplicateProjection {
            return .conflict(.init(body: .json(Problem("alreadyRunning", field: "version", "version \(version) is already running in this service"))))
        }
        return .accepted(.init(body: .json(.init(version: version))))
    }

    func compareVersions(_ input: Operations.CompareVersions.Input) async throws -> Operations.CompareVersions.Output {
        for (field, version) in [("old", input.query.old), ("new", input.query.new)] where version < 1 {
            return .badRequest(.init(body: .json(Problem("invalidQuery", field: field, "compare needs ?old=N&new=M, versions from 1"))))
        }
        do {
            let c = try await runtime.versions.compare(readModel.name, old: input.query.old, new: input.query.new)
            return .ok(
                .init(
                    body: .json(
                        .init(
                            oldVersion: c.oldVersion, newVersion: c.newVersion, samePosition: c.samePosition, differingRows: c.differingRows,
                            tables: c.tables.map {
                                .init(
                                    name: $0.name, rowsInOld: $0.rowsInOld, rowsInNew: $0.rowsInNew, rowsOnlyInOld: $0.rowsOnlyInOld,
                                    rowsOnlyInNew: $0.rowsOnlyInNew, columnsOnlyInOld: $0.columnsOnlyInOld, columnsOnlyInNew: $0.columnsOnlyInNew)
                            },
                            tablesOnlyInOld: c.tablesOnlyInOld, tablesOnlyInNew: c.tablesOnlyInNew))))
        } catch let error as ProjectionError {
            return .refused(error)
        }
    }

    func promoteVersion(_ input: Operations.PromoteVersion.Input) async throws -> Operations.PromoteVersion.Output {
        let version = input.path.version
        guard version >= 1 else { return .badRequest(.init(body: .json(.versionFromOne))) }
        do {
            try await runtime.versions.promote(readModel.name, version: version)
            return .ok(.init(body: .json(.init(activeVersion: version))))
        } catch let error as ProjectionError {
            return .refused(error)
        }
    }

    func rollBack(_ input: Operations.RollBack.Input) async throws -> Operations.RollBack.Output {
        do {
            return .ok(.init(body: .json(.init(activeVersion: try await runtime.versions.rollback(readModel.name)))))
        } catch let error as ProjectionError {
            return .refused(error)
        }
    }
}

/// What a version operation's answer can be besides success: every such generated output has these
/// cases, so one function (``refused(_:)``) maps a refusal for them all.
protocol VersionOperationOutput {
    static func notFound(_ response: Components.Responses.NotFound) -> Self
    static func conflict(_ response: Components.Responses.Conflict) -> Self
}

extension Operations.CompareVersions.Output: VersionOperationOutput {}
extension Operations.PromoteVersion.Output: VersionOperationOutput {}
extension Operations.RollBack.Output: VersionOperationOutput {}

extension VersionOperationOutput {
    /// 404 for a version or read model nobody knows, else 409; the problem names the version.
    static func refused(_ error: ProjectionError) -> Self {
        let problem = Problem("\(error.code)", field: error.version.map { _ in "version" }, error.message)
        return [.unknownVersion, .unknownProjection].contains(error.code) ? .notFound(.init(body: .json(problem))) : .conflict(.init(body: .json(problem)))
    }
}

extension Problem {
    static let versionFromOne = Problem("invalidParameter", field: "version", "versions are integers from 1")
}
