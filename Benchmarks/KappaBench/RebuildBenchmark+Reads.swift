import Foundation
import Kappa
import KappaPostgres
import PostgresNIO

extension RebuildBenchmark {
    /// The rebuild's page reads alone, with nothing applied: the whole log read in log order (one
    /// partition), then in 2 and 4 stream-hash partitions one after another, with the server's CPU
    /// per event each way. Partitions that each read only their own events cost the server what one
    /// partition costs; ones that each walked the whole range cost it N times.
    func measureReads(_ store: PostgresEventStore, _ client: PostgresClient, events: Int) async throws {
        let target = try await store.head(), clock = ContinuousClock()
        emit("page reads alone (nothing applied), every partition in turn:   seconds   server CPU/event   client CPU/event")
        for partitions in [1, 2, 4] {
            // Twice, the faster kept: the first run also brings the index into the cache.
            var best: (time: Duration, server: Double, client: Double, read: Int)?
            for _ in 0..<2 {
                let server = try await BackendCPU.now(client), own = selfCPU()
                var read = 0
                let time = try await clock.measure {
                    for partition in 0..<partitions {
                        if partitions == 1 {
                            var after = LogPosition.start
                            while true {
                                let page = try await store.readLog(after: after, through: target, limit: batchSize)
                                read += page.count
                                guard let last = page.last, page.count == batchSize else { break }
                                after = last.position
                            }
                            continue
                        }
                        let range = StreamHashRange(partition: partition, of: partitions)
                        var checkpoint = PartitionCheckpoint(stream: nil, position: .start)
                        while true {
                            let page = try await store.readPartition(range, after: checkpoint, from: .start, through: target, limit: batchSize)
                            read += page.count
                            guard let last = page.last, page.count == batchSize else { break }
                            checkpoint = PartitionCheckpoint(after: last)
                        }
                    }
                }
                let serverSeconds = try await BackendCPU.now(client).since(server).values.reduce(0, +)
                if best == nil || time < best!.time { best = (time, serverSeconds, selfCPU() - own, read) }
            }
            guard let best else { continue }
            let label = partitions == 1 ? "log order, 1 partition" : "stream-hash ranges, \(partitions) partitions"
            emit(
                "\(label.padding(toLength: 40, withPad: " ", startingAt: 0))"
                    + String(
                        format: "%7.2f   %8.2f µs        %8.2f µs%@", best.time.seconds, best.server / Double(events) * 1e6,
                        best.client / Double(events) * 1e6, best.read == events ? "" : "   READ \(best.read) OF \(events)"))
        }
    }
}
