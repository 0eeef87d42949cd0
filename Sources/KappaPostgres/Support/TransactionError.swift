import PostgresNIO

extension PostgresTransactionError {
    /// The error that matters: the closure's own error when it threw, else the failed COMMIT or BEGIN
    /// (translated by `translate` when the driver raised it).
    func cause(translate: (PSQLError) -> any Error) -> any Error {
        if let closureError { return closureError }
        let failure = commitError ?? beginError
        if let failure = failure as? PSQLError { return translate(failure) }
        return failure ?? self
    }
}
