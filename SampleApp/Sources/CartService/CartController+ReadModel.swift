import CartDomain
import CartReadModels
import Foundation
import Hummingbird
import Kappa
import KappaPostgres

/// The read model's migration by replay over HTTP: its versions with progress, starting a new version
/// in the running service, comparing two, promoting one, rolling back. The terminal front end uses these.
extension CartController {
    /// The read-model versions whose code this service holds.
    var knownVersions: [any Projection] { allVersions(configuration) }

    func addReadModelRoutes(to router: Router<BasicRequestContext>) {
        router.get("read-model") { _, _ in try await readModelStatus() }
        // The operator requests: they change what readers see, or scan whole versions.
        router.post("read-model/versions/:version/build") { request, context in
            try requireOperator(request)
            return try await build(try version(context))
        }
        router.get("read-model/compare") { request, _ in
            try requireOperator(request)
            return try await compare(old: request.uri.queryParameters.get("old"), new: request.uri.queryParameters.get("new"))
        }
        router.post("read-model/versions/:version/promote") { request, context in
            try requireOperator(request)
            return try await promote(try version(context))
        }
        router.post("read-model/rollback") { request, _ in
            try requireOperator(request)
            return try await rollback()
        }
        router.get("carts/:id/events") { _, context in try await events(of: try cartID(context)) }
    }

    func readModelStatus() async throws -> Response {
        let name = readModel.name
        let rows = try await runtime.versions.versions(of: name)
        let statuses = try await runtime.status().filter { $0.name == name }
        let progress = runtime.rebuildProgress().filter { $0.projection == name }
        let versions = rows.filter { $0.lifecycle != .dropped }.map { row in
            let status = statuses.first { $0.version == row.version }
            return CartAPI.VersionView(
                version: row.version, lifecycle: row.lifecycle.rawValue, state: (status?.state ?? row.state).rawValue,
                checkpoint: "\(row.checkpoint)", eventsApplied: row.eventsApplied, lagEvents: status?.lagEvents ?? 0,
                deadLetters: status?.deadLetters ?? 0, failedError: status?.failedError,
                rebuild: progress.first { $0.version == row.version }.map {
                    CartAPI.RebuildView(eventsDone: $0.eventsDone, eventsTotal: $0.eventsTotal, eventsPerSecond: Int($0.eventsPerSecond))
                })
        }
        return try json(
            CartAPI.ReadModelView(
                name: name, activeVersion: rows.first { $0.lifecycle == .active }?.version,
                availableVersions: knownVersions.map(\.version), versions: versions))
    }

    func build(_ version: Int) async throws -> Response {
        guard let projection = knownVersions.first(where: { $0.version == version }) else {
            return try problem(
                .notFound, code: "unknownVersion", field: "version", message: "this service has no code for version \(version) of \(readModel.name)")
        }
        guard configuration.runProjections else {
            return try problem(
                .conflict, code: "projectionsRunElsewhere", field: nil,
                message: "the projections run in a worker process; start version \(version) there")
        }
        do {
            try await runtime.start(projection)
        } catch let error as ProjectionError where error.code == .duplicateProjection {
            return try problem(.conflict, code: "alreadyRunning", field: "version", message: "version \(version) is already running in this service")
        }
        return try json(["version": version], status: .accepted)
    }

    /// `old` and `new` as the query gives them: versions, integers from 1.
    func compare(old oldText: String?, new newText: String?) async throws -> Response {
        guard let old = oldText.flatMap({ Int($0) }), old >= 1 else {
            return try problem(.badRequest, code: "invalidQuery", field: "old", message: "compare needs ?old=N&new=M, versions from 1")
        }
        guard let new = newText.flatMap({ Int($0) }), new >= 1 else {
            return try problem(.badRequest, code: "invalidQuery", field: "new", message: "compare needs ?old=N&new=M, versions from 1")
        }
        return try await refusing {
            let result = try await runtime.versions.compare(readModel.name, old: old, new: new)
            return try json(CartAPI.ComparisonView(result))
        }
    }

    func promote(_ version: Int) async throws -> Response {
        try await refusing {
            try await runtime.versions.promote(readModel.name, version: version)
            return try json(["activeVersion": version])
        }
    }

    func rollback() async throws -> Response {
        try await refusing { try json(["activeVersion": try await runtime.versions.rollback(readModel.name)]) }
    }

    /// The cart's events, from the log: what the read model is built from.
    func events(of id: String) async throws -> Response {
        let events = try await store.readStream(try Cart.stream(id), from: 0, limit: 1_000)
        guard !events.isEmpty else { return try problem(.notFound, code: "notFound", field: nil, message: "no cart \(id) in the log") }
        return try json(
            events.map {
                CartAPI.EventView(
                    position: "\($0.position)", streamVersion: $0.streamVersion, type: $0.eventType,
                    recordedAt: $0.recordedAt, payload: String(decoding: $0.payload, as: UTF8.self))
            })
    }

    /// A version operation's refusal as 409 (404 for a version nobody knows), naming the reason.
    func refusing(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as ProjectionError {
            let status: HTTPResponse.Status = [.unknownVersion, .unknownProjection].contains(error.code) ? .notFound : .conflict
            return try problem(status, code: "\(error.code)", field: error.version.map { _ in "version" }, message: error.message)
        }
    }

    func version(_ context: BasicRequestContext) throws -> Int {
        guard let version = Int(try context.parameters.require("version")), version > 0 else {
            throw HTTPError(.notFound, message: "versions are positive integers")
        }
        return version
    }
}
