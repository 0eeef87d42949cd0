/// Checks stored events, handed in (stream, version) order, against their hash chains: each event's
/// stored hash must be SHA-256 of its predecessor's stored hash and its own content (``ChainHash``),
/// and its predecessor must be there. Keeps only the last event seen, so memory stays bounded.
struct ChainVerifier {
    private(set) var eventsChecked = 0
    private(set) var streamsChecked = 0
    private(set) var breaks: [ChainBreak] = []
    private(set) var breakCount = 0
    private var last: (stream: String, version: Int64, hash: [UInt8]?)?

    /// Checks `event`, the next in (stream, version) order; returns its break, if any.
    mutating func check(_ event: ChainedEvent) -> ChainBreak? {
        eventsChecked += 1
        let sameStream = last?.stream == event.stream
        if !sameStream { streamsChecked += 1 }
        // Whether the predecessor was the event just seen, and its stored hash.
        let predecessorSeen = sameStream && last?.version == event.version - 1
        let predecessorHash = predecessorSeen ? last?.hash : nil
        last = (event.stream, event.version, event.storedHash)

        let reason: ChainBreak.Reason?
        if event.version > 1 && !predecessorSeen {
            reason = .predecessorMissing
        } else if let stored = event.storedHash {
            // A predecessor without a hash was named itself; against it, this event cannot match.
            let previous = event.version > 1 ? predecessorHash ?? [] : nil
            reason = ChainHash.hash(of: event, previous: previous) == stored ? nil : .contentChanged
        } else {
            reason = .hashMissing
        }
        guard let reason else { return nil }
        let found = ChainBreak(
            stream: event.stream, version: event.version, position: event.position,
            eventID: event.eventID, eventType: event.eventType, reason: reason)
        breakCount += 1
        if breaks.count < ChainVerification.keptBreaks { breaks.append(found) }
        return found
    }
}
