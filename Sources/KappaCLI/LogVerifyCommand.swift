import ArgumentParser
import Foundation
import Kappa
import KappaPostgres
import PostgresNIO

/// `log verify [--stream S]`: recomputes the log's hash chains and names the first event that no
/// longer matches.
struct LogVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute the log's hash chains and name any event whose content no longer matches.",
        discussion: """
            Every event carries a SHA-256 hash chained to the previous event of its stream, set by the \
            server as it is appended. The database refuses updates and deletes, but its owner or a \
            superuser can get past that; this command recomputes each chain here, independently of the \
            server, and names each event whose hash no longer holds: one that was edited, or the one \
            after a deleted event. It reads the log page by page along the (stream, version) index, \
            with no transaction held open, so it can run beside the application; any role that may \
            read the log may run it.

            Exit status: 0 when every chain holds, 1 when one does not (each such event is listed, \
            the first 100 of them), 2 when the log could not be verified (no connection, refused, \
            not yet migrated).
            """)

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Verify only this stream.") var stream: String?

    func run() async throws {
        let stream: StreamID?
        do {
            stream = try self.stream.map { try StreamID($0) }
        } catch {
            throw ValidationError("--stream: \(error)")
        }
        let logger = database.logger
        let bar = ProgressBar()
        let verification: ChainVerification
        do {
            let database = try await DatabaseClient.connect(url: self.database.databaseURL, environment: self.database.environment, logger: logger)
            let store = try PostgresEventStore(client: database.client, configuration: .init(schema: self.database.logSchemaName), logger: logger)
            verification = try await withThrowingTaskGroup(of: Void.self) { group in
                for service in database.services { group.addTask { try await service.run() } }
                defer { group.cancelAll() }
                return try await store.verifyChains(stream: stream) { progress in
                    bar.update(
                        .init(
                            label: "verify", done: progress.eventsChecked, total: progress.estimatedEvents, unit: "events",
                            elapsed: progress.elapsed, detail: "\(progress.streamsChecked) streams, \(progress.breakCount) broken"))
                }
            }
            bar.finish()
        } catch {
            // Not connected, refused, or a log without chains (EventStoreError says which).
            bar.finish()
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let seconds = Double(verification.elapsed.components.seconds) + Double(verification.elapsed.components.attoseconds) / 1e18
        let checked =
            "\(Self.counted(verification.eventsChecked, "event")) in \(Self.counted(verification.streamsChecked, "stream")) checked in \(String(format: "%.2f", seconds)) s"
        guard let first = verification.firstBreak else {
            if let stream, verification.eventsChecked == 0 {
                print("stream \(stream) has no events; \(checked)")
            } else {
                print("every hash chain holds: \(checked)")
            }
            return
        }
        for found in verification.breaks { print("broken: \(found)") }
        if verification.breakCount > verification.breaks.count {
            print("… and \(verification.breakCount - verification.breaks.count) more")
        }
        print("\(Self.counted(verification.breakCount, "event")) with a broken chain; \(checked)")
        FileHandle.standardError.write(Data("error: the log's history was changed: the first event whose chain does not hold is \(first)\n".utf8))
        throw ExitCode(1)
    }

    /// `1 event`, `2 events`.
    static func counted(_ count: Int, _ noun: String) -> String {
        "\(count) \(noun)\(count == 1 ? "" : "s")"
    }
}
