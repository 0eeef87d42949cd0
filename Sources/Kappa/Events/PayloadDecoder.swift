import KappaPayloadDecoding

/// Decodes event payloads from JSON with the results of Foundation's `JSONDecoder` (as
/// ``EventRegistry`` configures it), several times faster: ``EventRegistry`` decodes with it, and
/// projections can too.
///
/// ```swift
/// let added = try PayloadDecoder().decode(ItemAdded.self, from: event.payload)
/// ```
///
/// The decoder is the module `KappaPayloadDecoding`'s, where its documentation is (what it
/// accepts, its results and errors beside `JSONDecoder`'s, its memory).
///
/// It lives in a module of its own, which needs only Foundation, so that it and its tests build
/// without the rest of the package. Kappa names it with a type alias rather than re-exporting the
/// module (`@_exported import`): the alias is one public name, a documented symbol of this module
/// (so DocC links to it resolve here), and code that imports both modules still sees one type.
public typealias PayloadDecoder = KappaPayloadDecoding.PayloadDecoder
