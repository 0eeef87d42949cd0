import Foundation
import Kappa
import Synchronization
import Testing

@Suite("Event ids: UUIDv7")
struct EventIDGeneratorTests {
    /// The id's bytes as one big-endian number's digits: what the log's index orders by.
    func hex(_ id: UUID) -> String { id.uuidString.lowercased() }

    @Test func anIdIsAVersion7UUIDStampedWithTheMillisecond() throws {
        let at = Date(timeIntervalSince1970: 1_765_000_000.123)
        let id = EventIDGenerator(now: { at }).next()
        let bytes = withUnsafeBytes(of: id.uuid) { Array($0) }
        #expect(bytes[6] >> 4 == 7, "version")
        #expect(bytes[8] >> 6 == 0b10, "RFC 9562 variant")
        let millisecond = bytes[0..<6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(millisecond == 1_765_000_000_123)
    }

    @Test func idsIncreaseWithinAMillisecondPastTheCounterAndWhenTheClockStepsBack() {
        let clock = Mutex(Date(timeIntervalSince1970: 1_765_000_000))
        let generator = EventIDGenerator(now: { clock.withLock { $0 } })
        var previous = generator.next()
        // 10,000 in one millisecond: past the 12-bit counter, so later milliseconds are borrowed.
        for index in 0..<20_000 {
            if index == 10_000 { clock.withLock { $0 = $0.addingTimeInterval(-5) } } // the clock steps back 5 s
            let id = generator.next()
            #expect(hex(id) > hex(previous), "id \(index) is not above the one before")
            previous = id
        }
    }

    @Test func idsAreUniqueAcrossConcurrentTasksAndGenerators() async {
        let generators = [EventIDGenerator.shared, EventIDGenerator(), EventIDGenerator()]
        let ids = await withTaskGroup(of: [UUID].self) { group in
            for task in 0..<6 {
                group.addTask { (0..<20_000).map { _ in generators[task % generators.count].next() } }
            }
            return await group.reduce(into: [UUID]()) { $0 += $1 }
        }
        #expect(Set(ids).count == ids.count)
    }
}
