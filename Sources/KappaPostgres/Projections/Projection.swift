import Kappa
import Logging
import PostgresNIO

/// A read model built from the log: its tables, and how events change them.
///
/// Each version of a projection owns a PostgreSQL schema, `<name>_v<version>`, in the read-model
/// database; ``setupSQL`` creates its tables there (it runs with `search_path` set to that schema,
/// so write table names unqualified). The runtime hands ``apply(_:in:)`` batches of events in log
/// order inside a transaction that also moves the projection's checkpoint: the batch's writes and
/// the checkpoint commit together or not at all, so every event takes effect exactly once.
///
/// Projections must have no side effects outside that transaction — they are replayed whenever a
/// read model is rebuilt. Side effects belong in a ``Reactor``.
public protocol Projection: Sendable {
    /// 1…40 lower-case ASCII letters, digits and `_`, starting with a letter.
    var name: String { get }
    /// 1 or more; a new version is a new read model, built from the log beside the old one.
    var version: Int { get }
    /// DDL for the read-model tables, run once when this version is first set up. Keep the keys
    /// the handler's upserts need (primary keys, unique constraints) here.
    var setupSQL: String { get }
    /// DDL for secondary indexes, run once when this version has caught up with the log for the
    /// first time: a bulk rebuild loads the tables first and indexes them after. Default: none.
    var indexSQL: String { get }
    /// Whether the read model depends only on the order of events within each stream (most do),
    /// which lets a rebuild run several workers, each on a partition of the streams. Default
    /// ``ProjectionOrdering/global``: one ordered worker.
    var ordering: ProjectionOrdering { get }
    /// Whether a bulk rebuild creates the tables `UNLOGGED` (no WAL while loading) and makes them
    /// logged when the version catches up. Default `false`.
    var unloggedWhileBuilding: Bool { get }
    /// The event types ``apply(_:in:)`` is given; `nil` (the default) means every event.
    /// Other events still move the checkpoint.
    var eventTypes: Set<String>? { get }
    /// Applies events, in log order, inside the runtime's transaction. Fold many events into few
    /// writes where you can (many events for one row → one upsert). Throwing rolls the batch back;
    /// the runtime then retries or applies the projection's poison-event policy.
    func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws
}

extension Projection {
    /// Default: `nil`, every event.
    public var eventTypes: Set<String>? { nil }
    /// Default: no secondary indexes.
    public var indexSQL: String { "" }
    /// Default: ``ProjectionOrdering/global``.
    public var ordering: ProjectionOrdering { .global }
    /// Default: `false`.
    public var unloggedWhileBuilding: Bool { false }
}

/// The order a projection needs its events in.
public enum ProjectionOrdering: Sendable, Hashable {
    /// The log's global order: rebuilt by one ordered worker.
    case global
    /// Only each stream's own order: rebuilt by several workers, each taking a partition of the streams.
    /// Writes from different partitions may touch the same rows, so make them commutative (`x = x + n`),
    /// and lock rows in a fixed order (sort keys) to keep deadlocks rare; they are retried anyway.
    case perStream
}

/// A projection written one event at a time, for simple read models:
///
/// ```swift
/// let counts = EventProjection(name: "event_counts", version: 1,
///     setupSQL: "CREATE TABLE counts (event_type text PRIMARY KEY, n bigint NOT NULL)") { event, context in
///     try await context.execute("""
///         INSERT INTO \(unescaped: context.schema).counts VALUES (\(event.eventType), 1)
///         ON CONFLICT (event_type) DO UPDATE SET n = counts.n + 1
///         """)
/// }
/// ```
public struct EventProjection: Projection {
    /// 1…40 lower-case ASCII letters, digits and `_`, starting with a letter.
    public let name: String
    /// 1 or more; a new version is a new read model, built from the log beside the old one.
    public let version: Int
    /// DDL for the read-model tables, run once when this version is first set up.
    public let setupSQL: String
    /// The event types `handle` is given; `nil` means every event.
    public let eventTypes: Set<String>?
    let handle: @Sendable (RecordedEvent, ProjectionContext) async throws -> Void

    /// A projection whose tables `setupSQL` creates and whose `handle` applies one event at a time,
    /// inside the runtime's transaction; a throw from `handle` rolls back the whole batch.
    public init(
        name: String, version: Int, setupSQL: String, eventTypes: Set<String>? = nil,
        handle: @escaping @Sendable (RecordedEvent, ProjectionContext) async throws -> Void
    ) {
        self.name = name
        self.version = version
        self.setupSQL = setupSQL
        self.eventTypes = eventTypes
        self.handle = handle
    }

    /// Calls `handle` for each event in turn.
    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        for event in events { try await handle(event, context) }
    }
}

/// A projection's identity, validated: the name and version, and the schema they own.
struct ProjectionID: Hashable, Sendable, CustomStringConvertible {
    let name: String
    let version: Int
    let schema: SQLIdentifier

    /// The schema of the stable names (views) that point at the active version: the projection's name.
    let serving: SQLIdentifier

    init(name: String, version: Int) throws {
        guard name.utf8.count <= 40, let first = name.unicodeScalars.first, ("a"..."z").contains(first),
            let serving = try? SQLIdentifier(name, role: "projection")
        else {
            throw KappaPostgresError(
                .invalidIdentifier,
                message: "projection name '\(name)' must be 1…40 lower-case ASCII letters, digits and _, starting with a letter")
        }
        // Its stable names live in a schema of that name, which a switch empties of views.
        if name == "public" || name == "information_schema" || name.hasPrefix("pg_") {
            throw KappaPostgresError(.invalidIdentifier, message: "projection name '\(name)' is reserved: its stable names would go into that schema")
        }
        // `cart_v2` would be the schema of version 2 of `cart`.
        if let range = name.range(of: "_v", options: .backwards), !name[range.upperBound...].isEmpty,
            name[range.upperBound...].allSatisfy({ $0.isASCII && $0.isNumber })
        {
            throw KappaPostgresError(
                .invalidIdentifier,
                message: "projection name '\(name)' must not end in _v<number>: that is how version schemas are named")
        }
        self.serving = serving
        guard version >= 1 else {
            throw KappaPostgresError(.invalidIdentifier, message: "projection '\(name)' has version \(version); versions start at 1")
        }
        self.name = name
        self.version = version
        self.schema = try SQLIdentifier("\(name)_v\(version)", role: "projection schema")
    }

    var description: String { "\(name) v\(version)" }

    /// Refuses a name whose stable-names schema, or any version's schema, would be one of `schemas`
    /// (the log's and the runtime's): dropping the version, or a switch, would then drop what they hold.
    static func checkNotClashing(_ name: String, with schemas: [String]) throws {
        for schema in schemas {
            if schema == name {
                throw KappaPostgresError(
                    .invalidIdentifier,
                    message: "projection name '\(name)' is the name of the log's or the runtime's schema, where its stable names would go")
            }
            if schema.hasPrefix("\(name)_v"), let version = Int(schema.dropFirst(name.count + 2)), version >= 1,
                schema == "\(name)_v\(version)"
            {
                throw KappaPostgresError(
                    .invalidIdentifier,
                    message: "projection name '\(name)': its version \(version) would own schema '\(schema)', the log's or the runtime's schema")
            }
        }
    }
}
