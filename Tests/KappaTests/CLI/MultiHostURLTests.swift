import Foundation
import KappaPostgres
import KappaTesting
import PostgresNIO
import Testing

@testable import KappaCLI

/// Database URLs of several hosts, as libpq takes them: parsed, refused when they ask for what the
/// router cannot do, and reached through a PrimaryRouter by the CLI.
@Suite("DatabaseURL: several hosts")
struct MultiHostURLTests {
    @Test func severalHostsAreParsedAndTheFirstConfiguresTheClient() throws {
        let url = "postgres://app:s3cret@db1:5433,db2,[::1]:6000/shop?sslmode=disable&target_session_attrs=read-write"
        let hosts = try #require(try DatabaseURL.hosts(url: url, environment: [:]))
        #expect(hosts.map(\.host) == ["db1", "db2", "::1"])
        #expect(hosts.map(\.port) == [5433, 5432, 6000])
        let configuration = try DatabaseURL.configuration(url: url, environment: [:])
        #expect(configuration.host == "db1" && configuration.port == 5433)
        #expect(configuration.username == "app" && configuration.password == "s3cret" && configuration.database == "shop")
        let single = try #require(try DatabaseURL.hosts(url: "postgres://app@db9:7000/shop", environment: [:]))
        #expect(single.map(\.host) == ["db9"] && single.map(\.port) == [7000])
        #expect(try DatabaseURL.hosts(url: nil, environment: [:]) == nil)
    }

    @Test(arguments: [
        ("postgres://app@db1:x,db2/shop", "host"), ("postgres://app@db1,,db2/shop", "host"),
        ("postgres://app@db1,db2/shop?target_session_attrs=any", "target_session_attrs"),
        ("postgres://app@db1,db2/shop?target_session_attrs=prefer-standby", "target_session_attrs"),
    ])
    func whatTheRouterCannotDoIsRefusedNamingTheSetting(_ url: String, _ parameter: String) throws {
        let error = #expect(throws: DatabaseURLError.self) { try DatabaseURL.hosts(url: url, environment: [:]) }
        #expect(error?.code == .invalidHosts)
        #expect(error?.parameter == parameter)
        #expect(!(error?.message.contains("s3cret") ?? true))
    }

    /// The CLI given a URL whose first host accepts no connection reaches the log on the second.
    @Test func theCommandLineReachesTheHostThatAcceptsWrites() async throws {
        try await withEventStore { store, _ in
            _ = try await store.append(try deposits(2), to: "routed-1", expectedVersion: .noStream)
            let server = TestDatabase.configuration()
            let credentials =
                server.username.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed)!
                + (server.password.map { ":" + $0.addingPercentEncoding(withAllowedCharacters: .urlPasswordAllowed)! } ?? "")
            let url =
                "postgres://\(credentials)@127.0.0.1:1,\(server.host ?? "localhost"):\(server.port ?? 5432)/\(server.database ?? "postgres")?sslmode=disable"
            let verified = try await runCLI(["log", "verify", "--log-schema", store.configuration.schema, "--database-url", url], projection: "unused")
            #expect(verified.status == 0, "\(verified.err)")
            #expect(verified.out.contains("2 events in 1 stream checked"), "\(verified.out)")
        }
    }
}
