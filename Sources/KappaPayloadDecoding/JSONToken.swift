/// One JSON value on a tape: what it is and where its bytes are.
///
/// Scalars cover their bytes (`start..<end`; for strings the bytes between the quotes). A container
/// is followed by its contents (objects as key, value, key, value…) and `end` is the index of the
/// token just past its last descendant, so a container is skipped in one step.
struct JSONToken {
    enum Kind: UInt8 {
        case object, array, string, number, `true`, `false`, null
    }

    var kind: Kind
    /// Strings: ``simple`` and ``ascii``. Objects: ``simpleASCIIKeys``.
    var flags: UInt8
    /// Byte offset of the first byte (for strings: just past the opening quote).
    var start: UInt32
    /// Scalars: byte offset just past the value (for strings: of the closing quote).
    /// Containers: token index just past the container.
    var end: UInt32
    /// Containers: the number of elements (arrays) or members (objects).
    var count: UInt32

    /// A string with no escapes and no control characters.
    static let simple: UInt8 = 1
    /// A string with no byte above 0x7F.
    static let ascii: UInt8 = 2
    /// An object whose keys are all simple ASCII strings.
    static let simpleASCIIKeys: UInt8 = 4

    var isContainer: Bool { kind.rawValue <= Kind.array.rawValue }
    var isSimpleASCII: Bool { flags & (Self.simple | Self.ascii) == Self.simple | Self.ascii }
}
