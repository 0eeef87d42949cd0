/// A JSON document before it is written as text: what the shape generators make, and what
/// ``JSONWriter`` writes with random (valid) formatting.
package indirect enum JSONValue: Sendable {
    case null
    case bool(Bool)
    /// The number's text as it is to be written (`12`, `1.2e1`, `-0.0`).
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in order, repeated keys allowed.
    case object([(String, JSONValue)])

    /// The values in the tree (this one included), for picking one to change.
    var count: Int {
        switch self {
        case .array(let elements): 1 + elements.reduce(0) { $0 + $1.count }
        case .object(let members): 1 + members.reduce(0) { $0 + $1.1.count }
        default: 1
        }
    }

    /// The tree with its `index`th value (counted depth first, this one 0) replaced by `change(value)`.
    func replacing(_ index: Int, with change: (JSONValue) -> JSONValue) -> JSONValue {
        var remaining = index
        return replacing(&remaining, change)
    }

    private func replacing(_ remaining: inout Int, _ change: (JSONValue) -> JSONValue) -> JSONValue {
        if remaining == 0 {
            remaining = -1
            return change(self)
        }
        remaining -= 1
        switch self {
        case .array(var elements):
            for index in elements.indices where remaining >= 0 {
                elements[index] = elements[index].replacing(&remaining, change)
            }
            return .array(elements)
        case .object(var members):
            for index in members.indices where remaining >= 0 {
                members[index].1 = members[index].1.replacing(&remaining, change)
            }
            return .object(members)
        default:
            return self
        }
    }
}
