import ArgumentParser
import Foundation
import KappaPostgres
import Synchronization

/// `projections rebuild NAME --version N`: builds a version from the log in bulk, with a progress bar.
struct RebuildCommand<Host: ProjectionCommandHost>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "rebuild",
            abstract: "Build a projection version from the log, beside the serving one, until it has caught up.",
            discussion: """
                Runs in this process, holding the version's lease: a service following the same version waits \
                and takes over when the rebuild ends. Interrupted (Ctrl-C, a crash), it resumes from its \
                checkpoints with --resume. Refused for a version lower than the active one, for the active \
                version (from scratch), and while another process holds the version.
                """)
    }

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The projection's name.") var name: String
    @Option(help: "The version to build.") var version: Int
    @Flag(help: "Go on from the version's checkpoint (or an interrupted rebuild) instead of starting from the first event.")
    var resume = false
    @Flag(help: "Promote the version when it has caught up.") var promote = false
    @Option(help: "Workers in this process for a projection that needs only per-stream order (default 2).") var workers: Int?
    @Option(help: "Partitions of the streams such a projection is rebuilt in; other processes running it help (default 2).")
    var partitions: Int?
    @Option(help: "Events per batch and transaction (default 10000).") var batchSize: Int?

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        if let partitions, partitions < 1 { throw ValidationError("--partitions must be at least 1") }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() async throws {
        let bar = ProgressBar()
        let last = LockedProgress()
        let (name, version, resume, promote, workers, batchSize) = (self.name, self.version, self.resume, self.promote, self.workers, self.batchSize)
        let partitions = self.partitions
        try await connection.withVersions(
            projections: Host.projections(),
            configure: { configuration in
                if let workers { configuration.rebuildWorkers = workers }
                if let partitions { configuration.rebuildPartitions = partitions }
                if let batchSize { configuration.rebuildBatchSize = batchSize }
                configuration.rebuildThreshold = 1
            }
        ) { versions in
            try await versions.rebuild(name, version: version, fromScratch: !resume, promote: promote) { progress in
                last.set(progress)
                bar.update(progress)
            }
            bar.finish()
            let row = try await versions.versions(of: name).first { $0.version == version }
            var summary = "\(name) v\(version) caught up at \(row.map { "\($0.checkpoint)" } ?? "?")"
            if let progress = last.get() {
                summary += ": \(progress.eventsThisRun) events in bulk at \(Int(progress.eventsPerSecond)) events/s"
            }
            print(summary + (promote ? "; promoted, readers now see v\(version)" : "; promote it with `projections promote \(name) --version \(version)`"))
        }
    }
}

/// The last progress reported.
final class LockedProgress: Sendable {
    private let state = Mutex<RebuildProgress?>(nil)
    func set(_ value: RebuildProgress) { state.withLock { $0 = value } }
    func get() -> RebuildProgress? { state.withLock { $0 } }
}
