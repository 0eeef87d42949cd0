import Foundation
import PostgresNIO
import Testing

@testable import KappaCLI

/// The case of postgres-nio's TLS setting ("disable", "prefer", "require"): postgres-nio keeps it
/// internal, so a mirror names it.
func tlsCase(_ tls: PostgresClient.Configuration.TLS) -> String {
    guard let base = Mirror(reflecting: tls).children.first(where: { $0.label == "base" })?.value else { return "?" }
    return Mirror(reflecting: base).children.first?.label ?? String(describing: base)
}

/// A file holding `text` in a directory of its own, both removed after `body`.
func withTemporaryFile<R>(_ text: String, _ body: (String) throws -> R) throws -> R {
    let directory = FileManager.default.temporaryDirectory.appending(path: "kappa-url-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appending(path: "ca.pem")
    try text.write(to: file, atomically: true, encoding: .utf8)
    return try body(file.path)
}

@Suite("DatabaseURL: sslmode and sslrootcert")
struct DatabaseURLTests {
    /// A self-signed CA certificate (valid until 2126); only parsed here, never used to connect.
    static let caPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBmDCCAT2gAwIBAgIUTg+07MSvC8kz+hPgNYp+AA7FUBcwCgYIKoZIzj0EAwIw
        IDEeMBwGA1UEAwwVS2FwcGEgcGFyc2luZyB0ZXN0IENBMCAXDTI2MTIwNjAyMjAx
        MloYDzIxMjYxMTEyMDIyMDEyWjAgMR4wHAYDVQQDDBVLYXBwYSBwYXJzaW5nIHRl
        c3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARcE59bmgjOJLawPsrofiTZ
        xS7jOd7c6r11ES882z311sAg0P6A12GDoGkV5Y0HvsS3tWsikARIZzn8v4ztV7gZ
        o1MwUTAdBgNVHQ4EFgQUQZOkUqk4GBTiYYMTkrbeF536NDcwHwYDVR0jBBgwFoAU
        QZOkUqk4GBTiYYMTkrbeF536NDcwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD
        AgNJADBGAiEAzaWzoLJij+6KWekl2RF3hO4JL7swiyd5mNTHlpeR5H0CIQCfUphO
        k3/Co2RaK9/EloP3A1UFfCzvP29T5cnh13wSDA==
        -----END CERTIFICATE-----

        """

    func configuration(_ query: String, _ environment: [String: String] = [:]) throws -> PostgresClient.Configuration {
        try DatabaseURL.configuration(url: "postgres://app:secret@db.example:5433/app\(query)", environment: environment)
    }

    func parse(_ query: [String: String], _ environment: [String: String] = [:]) throws -> DatabaseTLS {
        try DatabaseTLS(query: query.map { URLQueryItem(name: $0.key, value: $0.value) }, environment: environment)
    }

    @Test func withoutSSLModeTLSIsPreferredAsLibpqDoes() throws {
        #expect(tlsCase(try configuration("").tls) == "prefer")
        #expect(tlsCase(try DatabaseURL.configuration(url: nil, environment: [:]).tls) == "prefer")
        let tls = try parse([:])
        #expect(tls.mode == .prefer && tls.trustRoots == nil)
        #expect(tls.configuration?.certificateVerification == CertificateVerification.none)
    }

    @Test(arguments: [("disable", "disable"), ("allow", "prefer"), ("prefer", "prefer"), ("require", "require")])
    func withoutACATheCertificateIsNotChecked(mode: String, postgresNIO: String) throws {
        #expect(tlsCase(try configuration("?sslmode=\(mode)").tls) == postgresNIO)
        let tls = try parse(["sslmode": mode])
        #expect(tls.mode.rawValue == mode && tls.trustRoots == nil)
        if mode == "disable" {
            #expect(tls.configuration == nil)
        } else {
            #expect(tls.configuration?.certificateVerification == CertificateVerification.none)
        }
    }

    /// verify-ca checks the chain, verify-full the host name too; with a CA given, prefer and
    /// require check the chain as libpq's do; disable reads nothing.
    @Test func aCAIsCheckedInEveryModeThatUsesTLS() throws {
        try withTemporaryFile(Self.caPEM) { path throws in
            let expected: [(String, String, CertificateVerification)] = [
                ("verify-ca", "require", .noHostnameVerification), ("verify-full", "require", .fullVerification),
                ("require", "require", .noHostnameVerification), ("prefer", "prefer", .noHostnameVerification),
            ]
            for (mode, postgresNIO, verification) in expected {
                #expect(tlsCase(try configuration("?sslmode=\(mode)&sslrootcert=\(path)").tls) == postgresNIO)
                let tls = try parse(["sslmode": mode, "sslrootcert": path])
                #expect(tls.configuration?.certificateVerification == verification, "\(mode)")
                guard case .certificates(let roots)? = tls.configuration?.trustRoots else {
                    Issue.record("\(mode): trust roots \(String(describing: tls.trustRoots))")
                    continue
                }
                #expect(roots == (try NIOSSLCertificate.fromPEMBytes(Array(Self.caPEM.utf8))))
            }
        }
        let disabled = try parse(["sslmode": "disable", "sslrootcert": "/nonexistent/ca.pem"])
        #expect(disabled.configuration == nil)
    }

    @Test func sslrootcertSystemMeansTheSystemsStoreAndVerifyFull() throws {
        let tls = try parse(["sslrootcert": "system"])
        #expect(tls.mode == .verifyFull && tls.trustRoots == .default)
        #expect(tls.configuration?.certificateVerification == .fullVerification)
        let tooWeak = #expect(throws: DatabaseURLError.self) { try configuration("?sslmode=require&sslrootcert=system") }
        #expect(tooWeak?.code == .invalidSSLMode && tooWeak?.parameter == "sslmode")
    }

    @Test func theEnvironmentFillsInWhatTheURLLeavesOut() throws {
        try withTemporaryFile(Self.caPEM) { path throws in
            let environment = ["PGSSLMODE": "verify-full", "PGSSLROOTCERT": path]
            #expect(try DatabaseTLS(query: nil, environment: environment).configuration?.certificateVerification == .fullVerification)
            #expect(tlsCase(try DatabaseURL.configuration(url: nil, environment: environment).tls) == "require")
            #expect(tlsCase(try configuration("", environment).tls) == "require")
            #expect(try parse([:], environment).mode == .verifyFull)
            #expect(try parse(["sslmode": "disable"], environment).mode == .disable)
            #expect(try parse(["sslmode": "verify-ca"], ["PGSSLROOTCERT": path]).trustRoots != nil)
        }
        #expect(try parse([:], ["PGSSLMODE": ""]).mode == .prefer)
        let fromVariable = try DatabaseURL.configuration(url: nil, environment: ["KAPPA_DATABASE_URL": "postgres://u@h/db?sslmode=require"])
        #expect(tlsCase(fromVariable.tls) == "require")
    }

    @Test func badSettingsAreTypedErrorsNamingTheSetting() throws {
        for query in ["?sslmode=requir", "?sslmode", "?sslmode=REQUIRE", "?sslmode=require&sslmode=nope"] {
            let error = #expect(throws: DatabaseURLError.self, "\(query)") { try configuration(query) }
            #expect(error?.code == .invalidSSLMode && error?.parameter == "sslmode", "\(query)")
            #expect(error.map { !"\($0)".contains("secret") } ?? false, "the password leaked: \(String(describing: error))")
        }
        let typo = #expect(throws: DatabaseURLError.self) { try configuration("?sslmode=requir") }
        #expect(typo.map { "\($0)".contains("'requir' is not one of disable, allow, prefer, require, verify-ca, verify-full") } ?? false)
        let variable = #expect(throws: DatabaseURLError.self) { try DatabaseURL.configuration(url: nil, environment: ["PGSSLMODE": "on"]) }
        #expect(variable?.code == .invalidSSLMode && variable?.parameter == "PGSSLMODE")

        for mode in ["verify-ca", "verify-full"] {
            let missing = #expect(throws: DatabaseURLError.self) { try configuration("?sslmode=\(mode)") }
            #expect(missing?.code == .missingRootCertificate && missing?.parameter == "sslrootcert", "\(mode)")
        }
        let absent = #expect(throws: DatabaseURLError.self) { try configuration("?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem") }
        #expect(absent?.code == .unreadableRootCertificate && absent?.parameter == "sslrootcert" && absent?.file == "/nonexistent/ca.pem")
        #expect(absent.map { "\($0)".contains("/nonexistent/ca.pem") } ?? false)
        let absentVariable = #expect(throws: DatabaseURLError.self) {
            try DatabaseURL.configuration(url: nil, environment: ["PGSSLMODE": "verify-ca", "PGSSLROOTCERT": "/nonexistent/ca.pem"])
        }
        #expect(absentVariable?.code == .unreadableRootCertificate && absentVariable?.parameter == "PGSSLROOTCERT")

        let brokenPEM = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
        for text in ["", "not a certificate\n", brokenPEM] {
            try withTemporaryFile(text) { path throws in
                let error = #expect(throws: DatabaseURLError.self) { try configuration("?sslmode=require&sslrootcert=\(path)") }
                #expect(error?.code == .unreadableRootCertificate && error?.file == path, "\(text)")
            }
        }
        let directory = #expect(throws: DatabaseURLError.self) { try configuration("?sslmode=verify-ca&sslrootcert=/tmp") }
        #expect(directory?.code == .unreadableRootCertificate && directory?.file == "/tmp")
    }

    /// From the command line a bad setting is a one-line error and a failing status, not a crash.
    @Test func theProjectionsCommandsReportABadSSLMode() async throws {
        let result = try await runCLI(["projections", "status", "--database-url", "postgres://app:secret@localhost/app?sslmode=bogus"], projection: "unused")
        #expect(result.status == 1)
        #expect(result.err.contains("DatabaseURLError.invalidSSLMode: sslmode: 'bogus'"), "\(result.err)")
        #expect(!result.err.contains("secret"))
    }
}
