import CLibPQ
import NIOCore
import PostgresNIO

/// A statement and its parameters as libpq sends them: each parameter's type, format and bytes.
struct LibPQStatement: Sendable {
    let sql: String
    private let types: [Oid]
    private let formats: [Int32]
    /// The parameters' bytes, one after another, each followed by a NUL (text-format parameters are
    /// read as C strings); `nil` offsets are SQL NULLs.
    private let storage: [UInt8]
    private let offsets: [Int?]
    private let lengths: [Int32]

    /// The statement postgres-nio would send for `query`, its parameters encoded as postgres-nio
    /// encodes them (the same types, formats and bytes), so that a handler writes one
    /// `PostgresQuery` for either driver.
    /// - Throws: ``Unsupported`` when `query`'s bindings are not laid out as this reads them.
    init(_ query: PostgresQuery) throws {
        let parameters = try BoundParameters(query.binds)
        var storage: [UInt8] = []
        var offsets: [Int?] = [], lengths: [Int32] = []
        for value in parameters.values {
            guard let value else {
                offsets.append(nil)
                lengths.append(0)
                continue
            }
            offsets.append(storage.count)
            lengths.append(Int32(value.readableBytes))
            storage.append(contentsOf: value.readableBytesView)
            storage.append(0)
        }
        self.sql = query.sql
        self.types = parameters.types
        self.formats = parameters.formats
        self.storage = storage
        self.offsets = offsets
        self.lengths = lengths
    }

    /// What a prepared statement of this one is named by on a connection: its text and parameter
    /// types (the server infers untyped parameters' types once, at preparation).
    var preparedKey: String { sql + "\u{0}" + types.map(String.init).joined(separator: ",") }

    /// Calls `body` with the parameter count and types, as `PQsendPrepare` takes them.
    func withTypes<R>(_ body: (Int32, UnsafePointer<Oid>?) -> R) -> R {
        types.withUnsafeBufferPointer { body(Int32($0.count), $0.baseAddress) }
    }

    /// Calls `body` with the parameters as `PQsendQueryParams` takes them: count, types, values, lengths, formats.
    func withParameters<R>(
        _ body: (Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
    ) -> R {
        storage.withUnsafeBytes { bytes in
            let base = bytes.bindMemory(to: CChar.self).baseAddress
            let values: [UnsafePointer<CChar>?] = offsets.map { offset in
                guard let offset, let base else { return nil }
                return UnsafePointer(base + offset)
            }
            return values.withUnsafeBufferPointer { values in
                types.withUnsafeBufferPointer { types in
                    lengths.withUnsafeBufferPointer { lengths in
                        formats.withUnsafeBufferPointer { formats in
                            body(Int32(values.count), types.baseAddress, values.baseAddress, lengths.baseAddress, formats.baseAddress)
                        }
                    }
                }
            }
        }
    }

    /// A `PostgresQuery` whose bindings this cannot read: the pipelined path is not taken for it.
    struct Unsupported: Error, CustomStringConvertible {
        var description: String { "the statement's parameters could not be read for libpq (an unexpected postgres-nio version?)" }
    }
}

/// The parameters of a `PostgresBindings`: what postgres-nio's `Bind` message would carry.
///
/// postgres-nio keeps them internal (`@usableFromInline`: a type and a format per parameter, and the
/// length-prefixed values in one buffer, as the wire protocol lays them out), and offers no public
/// way to read them. They are read through a struct laid out as `PostgresBindings` is
/// (``BindingsLayout``) — once per process it is checked, on bindings of every kind, to read what
/// reflection reads — and otherwise by reflection, which cost about 40 µs a statement in a live batch
/// of the pipelined cart read model (most of the batch's client time). A layout neither
/// recognises throws ``LibPQStatement/Unsupported``, and the runtime then sends the batch through
/// postgres-nio instead; the tests cover every type the framework and the sample bind.
struct BoundParameters: Equatable {
    var types: [Oid] = []
    var formats: [Int32] = []
    var values: [ByteBuffer?] = []

    init(_ bindings: PostgresBindings) throws {
        if BindingsLayout.matches, let layout = BindingsLayout(bindings) {
            try self.init(metadata: layout.entries, bytes: layout.bytes, count: bindings.count)
        } else {
            try self.init(reflecting: bindings)
        }
    }

    /// Read by reflection: slower, but it depends only on the names of postgres-nio's fields.
    init(reflecting bindings: PostgresBindings) throws {
        let mirror = Mirror(reflecting: bindings)
        guard let metadata = mirror.descendant("metadata").map(Mirror.init(reflecting:)),
            let bytes = mirror.descendant("bytes") as? ByteBuffer
        else { throw LibPQStatement.Unsupported() }
        var entries: [(PostgresDataType, PostgresFormat)] = []
        for entry in metadata.children {
            let fields = Mirror(reflecting: entry.value)
            guard let type = fields.descendant("dataType") as? PostgresDataType, let format = fields.descendant("format") as? PostgresFormat
            else { throw LibPQStatement.Unsupported() }
            entries.append((type, format))
        }
        try self.init(metadata: entries, bytes: bytes, count: bindings.count)
    }

    fileprivate init(metadata: [(PostgresDataType, PostgresFormat)], bytes: ByteBuffer, count: Int) throws {
        var bytes = bytes
        for (type, format) in metadata {
            guard let length = bytes.readInteger(as: Int32.self) else { throw LibPQStatement.Unsupported() }
            if length < 0 {
                values.append(nil)
            } else {
                guard let value = bytes.readSlice(length: Int(length)) else { throw LibPQStatement.Unsupported() }
                values.append(value)
            }
            types.append(type.rawValue)
            formats.append(Int32(format.rawValue))
        }
        guard bytes.readableBytes == 0, values.count == count else { throw LibPQStatement.Unsupported() }
    }
}

/// `PostgresBindings`' stored properties in their order (postgres-nio 1.x: `metadata`, then `bytes`),
/// for reading them without reflection. ``matches`` says whether this build of postgres-nio lays
/// them out so; otherwise ``BoundParameters`` reflects.
struct BindingsLayout {
    struct Metadata {
        var dataType: PostgresDataType
        var format: PostgresFormat
        var protected: Bool
    }

    var metadata: [Metadata]
    var bytes: ByteBuffer

    /// Each parameter's type and format.
    var entries: [(PostgresDataType, PostgresFormat)] { metadata.map { ($0.dataType, $0.format) } }

    init?(_ bindings: PostgresBindings) {
        guard MemoryLayout<PostgresBindings>.size == MemoryLayout<Self>.size,
            MemoryLayout<PostgresBindings>.alignment == MemoryLayout<Self>.alignment
        else { return nil }
        self = unsafeBitCast(bindings, to: Self.self)
    }

    /// Whether bindings of every kind read the same through the layout as by reflection: NULLs, text
    /// and binary formats, fixed- and variable-length values, arrays.
    static let matches: Bool = {
        var sample = PostgresBindings()
        sample.append(Int64.min + 1)
        sample.appendNull()
        sample.append("é ' ✓")
        sample.append(Int32(-7))
        sample.append(true)
        sample.append(["a", "", "c,d"])
        sample.append(0.1)
        guard let layout = BindingsLayout(sample), layout.metadata.count == sample.count,
            let reflected = try? BoundParameters(reflecting: sample),
            let read = try? BoundParameters(metadata: layout.entries, bytes: layout.bytes, count: sample.count)
        else { return false }
        return read == reflected
    }()
}
