/// The coding path of a value being decoded by ``PayloadDecoder``: a linked list from the value
/// up to the root, extended only when a nested value is decoded by its own `init(from:)`.
indirect enum PayloadCodingPath {
    case root
    case key(any CodingKey, PayloadCodingPath)
    case index(Int, PayloadCodingPath)

    var keys: [any CodingKey] {
        var keys: [any CodingKey] = []
        var node = self
        while true {
            switch node {
            case .root: return keys.reversed()
            case .key(let key, let parent):
                keys.append(key)
                node = parent
            case .index(let index, let parent):
                keys.append(PayloadIndexKey(index))
                node = parent
            }
        }
    }

    func appending(_ key: some CodingKey) -> PayloadCodingPath {
        .key(key, self)
    }
}

/// An array element's key: "Index 3", as JSONDecoder names them.
struct PayloadIndexKey: CodingKey {
    let index: Int

    init(_ index: Int) { self.index = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.index = intValue }

    var stringValue: String { "Index \(index)" }
    var intValue: Int? { index }
}

/// The key of ``PayloadKeyedContainer/superDecoder()``, `super`.
struct PayloadSuperKey: CodingKey {
    init() {}
    init?(stringValue: String) { guard stringValue == "super" else { return nil } }
    init?(intValue: Int) { nil }

    var stringValue: String { "super" }
    var intValue: Int? { nil }
}
