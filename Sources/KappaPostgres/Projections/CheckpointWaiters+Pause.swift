extension CheckpointWaiters {
    /// A live runner's coalescing pause (``ProjectionRuntime/Configuration/liveCoalescing``) on `key`:
    /// returns after `duration`, or at once while a read-your-writes wait on `key` through this
    /// runtime is open — one that begins during the pause ends it — or once `stopping()` (then
    /// ``endPauses()`` ends it). Batching more events per transaction is worth a few milliseconds
    /// of latency only while nobody is waiting for them.
    /// - Parameter began: Called as the pause begins (not when a wait or a stop skips it).
    func pause(_ key: LeaseKey, for duration: Duration, unless stopping: () -> Bool, began: () -> Void = {}) async {
        guard !isWaiting(on: key), !stopping() else { return }
        let bell = Doorbell()
        pausing.withLock { $0[key] = bell }
        defer { pausing.withLock { if $0[key] === bell { $0[key] = nil } } }
        // A wait that began, or a stop, before the bell was in place rang none.
        guard !isWaiting(on: key), !stopping() else { return }
        began()
        await bell.wait(timeout: duration)
    }

    /// Ends every pause now (the runtime is stopping).
    func endPauses() {
        for bell in pausing.withLock({ Array($0.values) }) { bell.ring() }
    }
}
