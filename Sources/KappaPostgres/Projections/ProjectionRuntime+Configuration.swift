import Foundation

extension ProjectionRuntime {
    /// How the runtime runs projections and reactors. Every value has a documented default.
    public struct Configuration: Sendable {
        /// The schema, in the read-model database, of the runtime's own tables (checkpoints, leases,
        /// dead letters, the `projection_status` view). Default `kappa_projections`.
        public var schema = "kappa_projections"
        /// Events read from the log per batch, and so per read-model transaction. Default 1,000.
        public var batchSize = 1_000
        /// How long a lease lasts without renewal: the longest a crashed runner blocks the projection
        /// before another process takes over. Renewed every third of it. Default 10 s.
        public var leaseDuration: Duration = .seconds(10)
        /// The longest a live runner waits for a wake-up before it looks at the log anyway. Appends in
        /// this process (through a ``LogNotifier``) wake it at once; `NOTIFY`s from other processes'
        /// notifiers too, once they have seen its listener (within their `listenerCheckInterval`, 1 s).
        /// While events are held back behind the gap-free horizon it looks again sooner (1–100 ms).
        /// Default 500 ms.
        public var idlePollInterval: Duration = .milliseconds(500)
        /// The first pause after a transient fault (connection lost, deadlock); doubles, with jitter. Default 50 ms.
        public var initialBackoff: Duration = .milliseconds(50)
        /// The longest pause after repeated transient faults. Default 5 s.
        public var maximumBackoff: Duration = .seconds(5)
        /// What a projection does with an event its handler rejects, unless it says otherwise. Default ``PoisonEventPolicy/stop``.
        public var poisonEventPolicy: PoisonEventPolicy = .stop
        /// Whether read-model transactions wait for their commit to reach the disk. Default `false`:
        /// a read model can always be rebuilt from the log, and its checkpoint commits with its rows, so
        /// after a server crash both go back together and the lost batches are applied again — still
        /// exactly once. Not waiting takes a disk flush off every batch (live latency ~3× lower here).
        /// A read-your-writes answer given in the last moments before a server crash is undone until
        /// the runner re-applies it.
        public var synchronousReadModelCommits = false
        /// The longest a read-model transaction (one batch) may stay open, and a runner's read of the
        /// log may take; past it, the transaction's connection is closed and the batch (or the read)
        /// retried. Guards against a connection that stops answering (seen after `pg_terminate_backend`:
        /// a query the driver never failed). A batch normally takes milliseconds; raise it for
        /// handlers that do minutes of work per batch. Default 60 s.
        public var transactionTimeout: Duration = .seconds(60)
        /// How long a live runner pauses before reading on while appends arrive fast (2,000 a
        /// second or more, on average), so that its next batch carries more: fewer transactions, and
        /// fewer rows written where a batch folds many events into one row, for the same events —
        /// more of the server left to appends. It does not pause while a read-your-writes wait
        /// (``ProjectionRuntime/waitUntil(_:version:hasPassed:timeout:)``) on the projection is open
        /// through this runtime (the one that runs it), and such a wait that begins ends a pause;
        /// other readers of the read model may see it up to this much later under such load.
        /// `.zero` turns it off. Default 10 ms.
        public var liveCoalescing: Duration = .milliseconds(10)
        /// Whether each batch's checkpoint move is a prepared statement (parsed and planned once per
        /// connection). Default `true`; turn it off behind a pooler that cannot keep prepared
        /// statements (PgBouncer before 1.21 in transaction mode), as with the store's own setting.
        public var preparedStatements = true
        /// The read-model database for libpq, PostgreSQL's C client: a connection string
        /// (`host=db1 dbname=shop user=projector`) or a URL (`postgresql://projector@db1/shop`, several
        /// hosts and `target_session_attrs` included); the `PG*` environment variables fill in what
        /// it leaves out, as for `psql`. It must name the database of the `readModels` client.
        ///
        /// When set, each live batch of a ``Projection`` is sent in one round trip, whatever number
        /// of statements its handler runs: ``ProjectionContext/execute(_:)`` queues each statement,
        /// and the runtime sends them with the fenced checkpoint move and a sync at once, through
        /// libpq's pipeline mode, as one transaction (a statement that fails rolls back the batch,
        /// checkpoint and all, and the batch is applied again statement by statement, where the
        /// handler meets the error as it always does). A handler that reads through ``ProjectionContext/connection`` has
        /// its batches run statement by statement as without it. Bulk rebuilds send their batches the
        /// same way, each with its partition's fenced checkpoint. Default `nil`:
        /// every statement through `readModels`, a round trip each.
        public var pipelineConnectionString: String?
        /// Whether to `LISTEN` for appends made by other processes. Default `true`.
        public var listenForAppends = true
        /// This runtime's name in leases; unique per process. Default `<host>-<pid>-<random>`.
        public var owner = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"

        /// A version at least this many events behind the log's head is rebuilt in bulk — batches of
        /// ``rebuildBatchSize``, in ``rebuildWorkers`` partitions for a ``ProjectionOrdering/perStream``
        /// projection — up to the head as it was when the rebuild started; then it follows the log as
        /// usual. Default 10,000.
        public var rebuildThreshold = 10_000
        /// Events per batch (and per transaction) while rebuilding. Bounds the rebuild's memory. Default 10,000.
        public var rebuildBatchSize = 10_000
        /// Partitions of the streams a ``ProjectionOrdering/perStream`` projection is rebuilt in (at
        /// least ``rebuildWorkers``); workers of any process running the projection claim them by lease.
        /// A stream's partition is a hash of its id; a process reads the log once, in its order, for
        /// the (up to ``rebuildWorkers``) partitions it works and hands each its own streams' events,
        /// so partitions cost the server no extra reading. More partitions than workers share a
        /// rebuild between processes (each process reads the log once a round of claims). A
        /// ``ProjectionOrdering/global`` projection is rebuilt as one partition. Default 2.
        public var rebuildPartitions = 2
        /// Spread the live projection versions over the runtimes sharing ``schema`` (the fleet): each
        /// runtime takes about its fair share — of M versions that N runtimes all run, at most ⌈M/N⌉ —
        /// and hands leases over, between batches, when runtimes join or leave. A runtime that stops or
        /// dies is replaced within about a lease duration. A version only one runtime runs is always
        /// that runtime's. Off: every runtime takes every lease it can, the first come holding the
        /// most. Default `true`.
        public var balancesLeases = true
        /// Workers this process puts on a rebuild: partitions it claims at a time and applies beside
        /// each other, fed from one read of the log. Default 2.
        public var rebuildWorkers = 2
        /// Whether a version that catches up is made active at once when a lower version is active
        /// (the automatic mode of a migration by replay). The first version of a projection is always
        /// made active when it catches up: nothing serves its stable names before. Default `false`:
        /// promote with ``ProjectionVersions/promote(_:version:)`` or the `projections promote` command.
        public var promoteWhenCaughtUp = false
        /// The most events a version may be behind the log's head and still be promoted (or rolled
        /// back to). Default 1,000.
        public var maximumPromotionLag = 1_000

        /// Every value at its default.
        public init() {}

        var leaseMilliseconds: Int64 { leaseDuration.wholeMilliseconds }
    }
}
