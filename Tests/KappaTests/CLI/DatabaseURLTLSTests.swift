import Foundation
import KappaTesting
import PostgresNIO
import Testing

@testable import KappaCLI
@testable import KappaPostgres

/// Connections made from a `DatabaseURL`, to the test server with TLS turned on for the test.
@Suite("DatabaseURL: TLS against a server", .serialized)
struct DatabaseURLTLSTests {
    /// Whether the connection `PostgresClient` makes from the configuration is encrypted, as the server says.
    func encrypted(_ configuration: PostgresClient.Configuration) async throws -> Bool {
        try await TestDatabase.withClient(configuration: configuration, logger: testLogger) { client in
            var ssl = false
            let rows = try await client.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", logger: testLogger)
            for try await value in rows.decode(Bool.self) { ssl = value }
            return ssl
        }
    }

    @Test func sslmodeDecidesWhetherTheConnectionIsEncrypted() async throws {
        try await withTLSServer { certificates async throws in
            let cases: [(sslmode: String?, rootCertificate: String?, expected: Bool)] = [
                ("require", nil, true), ("verify-ca", certificates.ca, true), ("verify-full", certificates.ca, true),
                (nil, nil, true), ("disable", nil, false),
            ]
            for (sslmode, rootCertificate, expected) in cases {
                let configuration = try DatabaseURL.configuration(url: testServerURL(sslmode: sslmode, rootCertificate: rootCertificate), environment: [:])
                #expect(try await encrypted(configuration) == expected, "sslmode \(sslmode ?? "absent")")
            }
            // The PG* variables, as the commands read them without a URL.
            var environment = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("PG") }
            environment["PGSSLMODE"] = "verify-full"
            environment["PGSSLROOTCERT"] = certificates.ca
            #expect(try await encrypted(try DatabaseURL.configuration(url: nil, environment: environment)))
        }
    }

    /// A certificate that does not verify fails the connection at once, naming why.
    @Test func aCertificateThatDoesNotVerifyIsAnError() async throws {
        try await withTLSServer { certificates async throws in
            let wrongCA = await #expect(throws: (any Error).self) {
                try await sslInUse(url: testServerURL(sslmode: "verify-full", rootCertificate: certificates.otherCA))
            }
            #expect(wrongCA.map { String(reflecting: $0).contains("CERTIFICATE_VERIFY_FAILED") } ?? false, "\(String(describing: wrongCA))")
            // With a CA given, require checks the chain too, as libpq's does.
            await #expect(throws: (any Error).self) {
                try await sslInUse(url: testServerURL(sslmode: "require", rootCertificate: certificates.otherCA))
            }
            // The certificate names localhost, not 127.0.0.1: verify-full refuses it there, verify-ca does not look.
            let wrongHost = await #expect(throws: (any Error).self) {
                try await sslInUse(url: testServerURL(host: "127.0.0.1", sslmode: "verify-full", rootCertificate: certificates.ca))
            }
            #expect(wrongHost.map { String(reflecting: $0).contains("failedToValidateHostname") } ?? false, "\(String(describing: wrongHost))")
            #expect(try await sslInUse(url: testServerURL(host: "127.0.0.1", sslmode: "verify-ca", rootCertificate: certificates.ca)))
            #expect(try await sslInUse(url: testServerURL(host: "127.0.0.1", sslmode: "require")))
        }
    }

    /// A store's libpq append connections given the URL with `sslmode=verify-full` are encrypted;
    /// given a CA that did not sign the server's certificate, none opens, and appends go through the
    /// client instead.
    @Test func libpqAppendConnectionsVerifyTheServer() async throws {
        try await withTLSServer { certificates async throws in
            for (rootCertificate, verifies) in [(certificates.ca, true), (certificates.otherCA, false)] {
                try await TestDatabase.withSchema(prefix: "kappa_test") { client, schema in
                    let application = "kappa-tls-append-\(UUID().uuidString.prefix(8).lowercased())"
                    var configuration = PostgresEventStore.Configuration(schema: schema)
                    configuration.appendConnectionString =
                        testServerURL(sslmode: "verify-full", rootCertificate: rootCertificate) + "&application_name=\(application)"
                    let store = try PostgresEventStore(client: client, configuration: configuration, logger: testLogger)
                    try await store.migrate()
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await store.run() }
                        defer { group.cancelAll() }
                        let libpq = store.libpqConnections
                        if verifies {
                            try await eventually("both connections open", timeout: .seconds(10)) { libpq.idleCount == 2 }
                            let encrypted = try await scalar(
                                """
                                SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                                WHERE a.application_name = \(application) AND s.ssl
                                """, on: client)
                            #expect(encrypted == 2)
                        } else {
                            try await eventually("both connections were refused", timeout: .seconds(10)) { libpq.failedOpens.load(ordering: .relaxed) >= 2 }
                        }
                        _ = try await store.append(try deposits(1), to: "account-1", expectedVersion: .noStream)
                        #expect(libpq.borrows.load(ordering: .relaxed) == (verifies ? 1 : 0))
                        #expect(libpq.holds.load(ordering: .relaxed) == (verifies ? 2 : 0))
                    }
                }
            }
        }
    }
}
