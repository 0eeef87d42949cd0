/// One kind of event, stored in the log under a stable name and a schema version.
///
/// ```swift
/// struct ItemAddedToCart: DomainEvent {
///     static let eventType: EventTypeName = "ItemAddedToCart"
///     static let schemaVersion = 2
///     var sku: String
///     var quantity: Int
/// }
/// ```
/// Raise ``schemaVersion`` whenever the stored shape changes, and register an ``Upcaster``
/// that turns the previous shape into the new one: stored events are never rewritten.
public protocol DomainEvent: Codable, Sendable {
    /// The stable name stored with each event of this type.
    static var eventType: EventTypeName { get }
    /// The version of this type's stored shape; 1 unless declared.
    static var schemaVersion: Int { get }
}

extension DomainEvent {
    /// Default: 1.
    public static var schemaVersion: Int { 1 }
}
