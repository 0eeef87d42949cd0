import Foundation
import KappaPostgres

/// A `postgres://` URL with several hosts in its authority (`user@h1:5432,h2:5433`).
struct MultiHostURL {
    let hosts: [PrimaryRouter.Host]
    /// The URL with the first host only, for the rest of its parsing.
    let withFirstHostOnly: String

    /// `nil` for a URL of one host (or not a URL at all: its parsing says why).
    init?(_ url: String) throws {
        guard let scheme = url.range(of: "://") else { return nil }
        let rest = url[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let userEnd = authority.lastIndex(of: "@")
        let hostList = userEnd.map { authority[authority.index(after: $0)...] } ?? authority
        guard hostList.contains(",") else { return nil }
        var hosts: [PrimaryRouter.Host] = []
        for entry in hostList.split(separator: ",", omittingEmptySubsequences: false) {
            // `[::1]:5432`, `db1:5432`, `db1`
            var host = Substring(entry), port = 5432
            if let colon = entry.lastIndex(of: ":"), !entry[colon...].contains("]") {
                guard let number = Int(entry[entry.index(after: colon)...]), (1...65_535).contains(number) else {
                    throw DatabaseURLError(.invalidHosts, parameter: "host", message: "the port of host '\(entry)' in the database URL is not a port number")
                }
                (host, port) = (entry[..<colon], number)
            }
            if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
            guard !host.isEmpty else {
                throw DatabaseURLError(.invalidHosts, parameter: "host", message: "the database URL names an empty host among its hosts")
            }
            hosts.append(PrimaryRouter.Host(host: String(host), port: port))
        }
        if let query = URLComponents(string: String(url[..<scheme.upperBound]) + "h" + rest[authorityEnd...])?.queryItems,
            let attributes = query.last(where: { $0.name == "target_session_attrs" })?.value,
            !["read-write", "primary"].contains(attributes)
        {
            throw DatabaseURLError(
                .invalidHosts, parameter: "target_session_attrs",
                message: "target_session_attrs=\(attributes) with several hosts: they are routed to the one that accepts writes (read-write or primary)")
        }
        self.hosts = hosts
        let first = hostList.split(separator: ",").first!
        self.withFirstHostOnly = String(url[..<scheme.upperBound]) + (userEnd.map { String(authority[...$0]) } ?? "") + first + rest[authorityEnd...]
    }
}
