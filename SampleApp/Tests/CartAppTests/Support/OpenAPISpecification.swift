import Foundation
import HTTPTypes
import Yams

/// `Sources/CartService/openapi.yaml`, parsed by Yams, and what it documents: the operations, and for
/// each response status its body's schema, against which the tests check every answer the service
/// gives (the JSON Schema keywords the spec uses: `$ref`, `type`, `enum`, `required`, `properties`,
/// `additionalProperties`, `items`, `minimum`, `maximum`, `minLength`, `maxLength`, `format`).
struct OpenAPISpecification: Sendable {
    struct Operation: Sendable {
        var path: String
        var method: String
        var id: String
        var value: JSONValue
        var isOperatorOnly: Bool { value["security"]?.array?.isEmpty == false }
        var statuses: Set<Int> { Set(value["responses"]?.object?.keys.compactMap { Int($0) } ?? []) }
    }

    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appending(path: "Sources/CartService/openapi.yaml")

    /// Loaded once for the whole run.
    static let shared: OpenAPISpecification = {
        do { return try OpenAPISpecification(contentsOf: file) } catch { fatalError("\(file.path): \(error)") }
    }()

    let document: JSONValue
    let operations: [Operation]

    init(contentsOf url: URL) throws {
        document = try JSONValue(yaml: try Yams.load(yaml: String(contentsOf: url, encoding: .utf8)))
        operations = (document["paths"]?.object ?? [:]).sorted { $0.key < $1.key }.flatMap { path, item in
            (item.object ?? [:]).filter { ["get", "post", "put", "patch", "delete"].contains($0.key) }.sorted { $0.key < $1.key }.map {
                Operation(path: path, method: $0.key, id: $0.value["operationId"]?.string ?? "", value: $0.value)
            }
        }
    }

    /// The operation whose path template matches `uri`'s path (`{name}` matches one segment).
    func operation(_ method: HTTPRequest.Method, _ uri: String) -> Operation? {
        let segments = uri.split(separator: "?", maxSplits: 1).first?.split(separator: "/") ?? []
        return operations.first { operation in
            let template = operation.path.split(separator: "/")
            return operation.method == method.rawValue.lowercased() && template.count == segments.count
                && zip(template, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }
    }

    /// What is wrong with `status`, `headers` and `body` as an answer to `method uri`: empty when the
    /// spec documents the status for the operation and the body matches its schema.
    func problems(_ method: HTTPRequest.Method, _ uri: String, status: Int, headers: HTTPFields, body: Data) -> [String] {
        guard let operation = operation(method, uri) else { return ["\(method) \(uri) is no documented operation"] }
        guard let declared = operation.value["responses"]?["\(status)"].map(resolved) else {
            return ["\(method) \(uri): \(status) is not documented for \(operation.id)"]
        }
        var problems: [String] = []
        if declared == .null { problems.append("\(operation.id) \(status): its $ref does not resolve") }
        for (name, header) in declared["headers"]?.object ?? [:] {
            guard let field = HTTPField.Name(name), let value = headers[field] else {
                if header["required"] == .bool(true) { problems.append("\(operation.id) \(status): no \(name) header") }
                continue
            }
            validate(.string(value), against: header["schema"] ?? .object([:]), at: "\(operation.id) \(status) \(name)", into: &problems)
        }
        guard let schema = declared["content"]?["application/json"]?["schema"] else { return problems }
        guard headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces) == "application/json" else {
            return problems + ["\(operation.id) \(status): content type \(headers[.contentType] ?? "none"), not application/json"]
        }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: body) else {
            return problems + ["\(operation.id) \(status): the body is not JSON: \(String(decoding: body, as: UTF8.self))"]
        }
        validate(value, against: schema, at: "\(operation.id) \(status) body", into: &problems)
        return problems
    }

    /// `value` with a `$ref` replaced by what it points at (`#/components/…`).
    func resolved(_ value: JSONValue) -> JSONValue {
        guard let reference = value["$ref"]?.string, reference.hasPrefix("#/") else { return value }
        return resolved(reference.dropFirst(2).split(separator: "/").reduce(document) { $0?[String($1)] } ?? .null)
    }

    /// The keywords ``validate(_:against:at:into:)`` checks, and those it may ignore (annotations).
    static let keywords: Set<String> = [
        "$ref", "type", "enum", "required", "properties", "additionalProperties", "items", "minimum", "maximum", "minLength", "maxLength",
        "format", "description", "example", "default",
    ]

    func validate(_ value: JSONValue, against schema: JSONValue, at path: String, into problems: inout [String]) {
        if let reference = schema["$ref"]?.string, resolved(schema) == .null { problems.append("\(path): \(reference) does not resolve") }
        let schema = resolved(schema)
        for keyword in (schema.object ?? [:]).keys where !Self.keywords.contains(keyword) {
            problems.append("\(path): the checker does not know the keyword \(keyword)")
        }
        if let type = schema["type"] {
            let allowed = Set(type.array?.compactMap(\.string) ?? type.string.map { [$0] } ?? [])
            guard !allowed.isDisjoint(with: value.typeNames) else {
                problems.append("\(path): \(value) is not \(allowed.sorted().joined(separator: " or "))")
                return
            }
        }
        if let choices = schema["enum"]?.array, !choices.contains(value) { problems.append("\(path): \(value) is not one of \(choices)") }
        switch value {
        case .object(let members):
            for name in schema["required"]?.array?.compactMap(\.string) ?? [] where members[name] == nil {
                problems.append("\(path): \(name) is required")
            }
            let properties = schema["properties"]?.object ?? [:]
            for (name, member) in members {
                if let property = properties[name] {
                    validate(member, against: property, at: "\(path).\(name)", into: &problems)
                } else if schema["additionalProperties"] == .bool(false) {
                    problems.append("\(path): \(name) is not a documented property")
                }
            }
        case .array(let items):
            if let itemSchema = schema["items"] {
                for (index, item) in items.enumerated() { validate(item, against: itemSchema, at: "\(path)[\(index)]", into: &problems) }
            }
        case .number(let number):
            if let minimum = schema["minimum"]?.number, number < minimum { problems.append("\(path): \(number) < \(minimum)") }
            if let maximum = schema["maximum"]?.number, number > maximum { problems.append("\(path): \(number) > \(maximum)") }
        case .string(let text):
            if let minimum = schema["minLength"]?.number, Double(text.count) < minimum { problems.append("\(path): shorter than \(minimum)") }
            if let maximum = schema["maxLength"]?.number, Double(text.count) > maximum { problems.append("\(path): longer than \(maximum)") }
            switch schema["format"]?.string {
            case "uuid" where UUID(uuidString: text) == nil: problems.append("\(path): \(text) is not a UUID")
            case "date-time"
            where (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)) == nil
                && (try? Date.ISO8601FormatStyle().parse(text)) == nil:
                problems.append("\(path): \(text) is not a date-time")
            default: break
            }
        case .null, .bool: break
        }
    }
}
