import Synchronization

/// Resumes a continuation once, with whichever result comes first.
final class OnceResult<R: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<R, any Error>?, result: Result<R, any Error>?, done: Bool)>((nil, nil, false))

    func install(_ continuation: CheckedContinuation<R, any Error>) {
        let early = state.withLock { state -> Result<R, any Error>? in
            if let result = state.result { return result }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    /// - Returns: whether this call was the first.
    @discardableResult
    func resume(with result: Result<R, any Error>) -> Bool {
        let (first, continuation) = state.withLock { state -> (Bool, CheckedContinuation<R, any Error>?) in
            guard !state.done else { return (false, nil) }
            state.done = true
            if let continuation = state.continuation {
                state.continuation = nil
                return (true, continuation)
            }
            state.result = result
            return (true, nil)
        }
        continuation?.resume(with: result)
        return first
    }
}
