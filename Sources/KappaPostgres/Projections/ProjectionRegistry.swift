import Synchronization

/// The projections a runtime runs: those it was created with and those started while it runs
/// (``ProjectionRuntime/start(_:)``), handed to the running runtime through a stream.
final class ProjectionRegistry: Sendable {
    private let registered: Mutex<[any Projection]>
    /// Runners set up by `start` for the running runtime to run.
    let started: AsyncStream<ProjectionRunner>
    private let continuation: AsyncStream<ProjectionRunner>.Continuation

    init(_ projections: [any Projection]) {
        self.registered = Mutex(projections)
        (started, continuation) = AsyncStream.makeStream(of: ProjectionRunner.self)
    }

    var all: [any Projection] { registered.withLock { $0 } }

    /// Adds `projection` unless one of the same name and version is registered; `false` if one is.
    func add(_ projection: any Projection) -> Bool {
        registered.withLock { list in
            guard !list.contains(where: { $0.name == projection.name && $0.version == projection.version }) else { return false }
            list.append(projection)
            return true
        }
    }

    func remove(_ projection: any Projection) {
        registered.withLock { $0.removeAll { $0.name == projection.name && $0.version == projection.version } }
    }

    /// Hands a runner to the running runtime; `false` once the runtime has stopped.
    func hand(_ runner: ProjectionRunner) -> Bool {
        if case .terminated = continuation.yield(runner) { return false }
        return true
    }

    /// The runtime stops: no more runners are taken.
    func finish() { continuation.finish() }
}
