import Foundation
import KappaTesting
import PostgresNIO

@testable import KappaCLI

/// A CA, a certificate for `localhost` it signed, and a second CA that signed nothing, made with
/// openssl in a temporary directory.
struct TestCertificates {
    let directory: URL
    var ca: String { directory.appending(path: "ca.crt").path }
    var otherCA: String { directory.appending(path: "other-ca.crt").path }
    var serverCertificate: URL { directory.appending(path: "server.crt") }
    var serverKey: URL { directory.appending(path: "server.key") }

    static func make() async throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appending(path: "kappa-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try await openssl(["req", "-x509"] + key + ["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=Kappa test CA"], in: directory)
        try await openssl(
            ["req", "-x509"] + key + ["-keyout", "other-ca.key", "-out", "other-ca.crt", "-days", "2", "-subj", "/CN=Kappa other CA"], in: directory)
        try await openssl(["req"] + key + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"], in: directory)
        try "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n".write(to: directory.appending(path: "server.ext"), atomically: true, encoding: .utf8)
        try await openssl(
            [
                "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
            ], in: directory)
        return TestCertificates(directory: directory)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// openssl failed, or is not installed (`scripts/test` installs Debian's `openssl` package).
struct OpenSSLFailed: Error, CustomStringConvertible {
    var arguments: [String]
    var status: Int32
    var errors: String
    var description: String { "openssl \(arguments.joined(separator: " ")) exited with \(status): \(errors)" }
}

func openssl(_ arguments: [String], in directory: URL) async throws {
    let errors = directory.appending(path: "openssl.err")
    _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["openssl"] + arguments
    process.currentDirectoryURL = directory
    process.standardOutput = FileHandle.nullDevice
    process.standardError = try FileHandle(forWritingTo: errors)
    let exit = ChildExit(of: process)
    try process.run()
    await exit.wait()
    guard process.terminationStatus == 0 else {
        throw OpenSSLFailed(arguments: arguments, status: process.terminationStatus, errors: (try? String(contentsOf: errors, encoding: .utf8)) ?? "")
    }
}

/// The test server (the `PG*` variables) with TLS on, serving `certificates`' server certificate, for
/// the length of `body`; its settings are reset afterwards. Other suites' plain connections go on
/// working meanwhile: `ssl = on` only lets clients ask for TLS.
///
/// The key and certificate are copied into the server's data directory, owned by the data
/// directory's owner (the server's user, `postgres` under `pg_virtualenv` even when the tests run as
/// root) with mode 0600, as the server demands of a key it owns; so the server must run on this machine.
func withTLSServer(_ body: @Sendable (TestCertificates) async throws -> Void) async throws {
    let certificates = try await TestCertificates.make()
    defer { certificates.remove() }
    try await TestDatabase.withClient { client in
        func run(_ sql: String) async throws { try await client.query(PostgresQuery(unsafeSQL: sql), logger: testLogger) }
        var dataDirectory = ""
        for try await value in try await client.query("SHOW data_directory", logger: testLogger).decode(String.self) { dataDirectory = value }
        let owner = try FileManager.default.attributesOfItem(atPath: dataDirectory)
        let name = "kappa-tls-test-\(UUID().uuidString.prefix(8).lowercased())"
        let certificate = URL(fileURLWithPath: dataDirectory).appending(path: "\(name).crt")
        let key = URL(fileURLWithPath: dataDirectory).appending(path: "\(name).key")
        defer { for file in [certificate, key] { try? FileManager.default.removeItem(at: file) } }
        try FileManager.default.copyItem(at: certificates.serverCertificate, to: certificate)
        try FileManager.default.copyItem(at: certificates.serverKey, to: key)
        for (file, mode) in [(certificate, 0o644), (key, 0o600)] {
            try FileManager.default.setAttributes(
                [.ownerAccountID: owner[.ownerAccountID] as Any, .groupOwnerAccountID: owner[.groupOwnerAccountID] as Any, .posixPermissions: mode],
                ofItemAtPath: file.path)
        }

        let initiallyOn = try await sslInUse(url: testServerURL(sslmode: "prefer"))
        func reset() async throws {
            for setting in ["ssl", "ssl_cert_file", "ssl_key_file"] { try await run("ALTER SYSTEM RESET \(setting)") }
            try await run("SELECT pg_reload_conf()")
            // The server reloads on its own time: wait until it serves connections as before the test.
            try await eventually("the test server back to its own TLS settings", timeout: .seconds(30)) {
                try await sslInUse(url: testServerURL(sslmode: "prefer")) == initiallyOn
            }
        }
        do {
            try await run("ALTER SYSTEM SET ssl_cert_file = '\(certificate.path)'")
            try await run("ALTER SYSTEM SET ssl_key_file = '\(key.path)'")
            try await run("ALTER SYSTEM SET ssl = on")
            try await run("SELECT pg_reload_conf()")
            try await eventually("the test server offering TLS with the test certificate (if never, see the server's log)", timeout: .seconds(30)) {
                (try? await sslInUse(url: testServerURL(sslmode: "verify-full", rootCertificate: certificates.ca))) == true
            }
            try await body(certificates)
        } catch {
            try? await reset()
            throw error
        }
        try await reset()
    }
}

/// A test connection neither failed nor answered within 20 s.
struct ConnectionHung: Error, CustomStringConvertible {
    var sslmode: String
    var description: String { "a connection with sslmode=\(sslmode) neither failed nor answered within 20 s" }
}

/// The test server's URL (from the `PG*` variables) with `sslmode` and `sslrootcert` in its query.
func testServerURL(host: String? = nil, sslmode: String?, rootCertificate: String? = nil) -> String {
    let environment = ProcessInfo.processInfo.environment
    var url = URLComponents()
    url.scheme = "postgres"
    url.host = host ?? environment["PGHOST"].flatMap { $0.isEmpty || $0.hasPrefix("/") ? nil : $0 } ?? "localhost"
    url.port = environment["PGPORT"].flatMap(Int.init) ?? 5432
    url.user = environment["PGUSER"] ?? "postgres"
    url.password = environment["PGPASSWORD"]
    url.path = "/" + (environment["PGDATABASE"] ?? "postgres")
    url.queryItems = [sslmode.map { URLQueryItem(name: "sslmode", value: $0) }, rootCertificate.map { URLQueryItem(name: "sslrootcert", value: $0) }]
        .compactMap { $0 }
    return url.string ?? ""
}

/// Whether a connection made as `url` says it is encrypted. Connects with one `PostgresConnection`,
/// with the TLS settings `DatabaseURL` makes of the URL: a failed handshake is an error at once, where
/// `PostgresClient`'s pool keeps retrying for a minute. Gives up after 20 s.
func sslInUse(url: String) async throws -> Bool {
    let client = try DatabaseURL.configuration(url: url, environment: [:])
    let tls = try DatabaseTLS(query: URLComponents(string: url)?.queryItems, environment: [:])
    // Whether TLS is off, preferred or required as DatabaseURL told the pool; how, as DatabaseTLS says.
    let connectionTLS: PostgresConnection.Configuration.TLS =
        switch (tlsCase(client.tls), tls.configuration) {
        case ("prefer", let configuration?): .prefer(try NIOSSLContext(configuration: configuration))
        case ("require", let configuration?): .require(try NIOSSLContext(configuration: configuration))
        default: .disable
        }
    let configuration = PostgresConnection.Configuration(
        host: client.host ?? "localhost", port: client.port ?? 5432, username: client.username, password: client.password,
        database: client.database, tls: connectionTLS)
    return try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: testLogger)
            do {
                var ssl = false
                let rows = try await connection.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", logger: testLogger)
                for try await value in rows.decode(Bool.self) { ssl = value }
                try await connection.close()
                return ssl
            } catch {
                try? await connection.close()
                throw error
            }
        }
        group.addTask {
            try await Task.sleep(for: .seconds(20))
            throw ConnectionHung(sslmode: tls.mode.rawValue)
        }
        defer { group.cancelAll() }
        return try await group.next() ?? false
    }
}
