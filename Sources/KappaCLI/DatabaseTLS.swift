import Foundation
import PostgresNIO

/// How a connection uses TLS, as libpq's `sslmode` and `sslrootcert` say: from the URL's query, else
/// from `PGSSLMODE` and `PGSSLROOTCERT` (libpq's rule: the environment fills in what the URL leaves
/// out), else `prefer`.
///
/// A given CA is checked in every mode that uses TLS (libpq's `require` with a root certificate acts
/// as `verify-ca`); the CA file is read here, so a bad one is an error before any connection.
struct DatabaseTLS: Sendable {
    /// libpq's `sslmode` values.
    enum Mode: String, Sendable, CaseIterable {
        /// No TLS.
        case disable
        /// libpq tries a plain connection first; postgres-nio cannot, so this is taken as `prefer`
        /// (both connect whether or not the server offers TLS).
        case allow
        /// TLS when the server offers it, else a plain connection.
        case prefer
        /// TLS or no connection; without a CA the server's certificate is not checked (encryption only).
        case require
        /// TLS, and the server's certificate must chain to the CA.
        case verifyCA = "verify-ca"
        /// As `verifyCA`, and the certificate must also name the host connected to.
        case verifyFull = "verify-full"
    }

    /// The mode when neither the URL nor `PGSSLMODE` names one: libpq's, so a URL means here what it
    /// means to `psql` (a server without TLS still gets a plain connection).
    static let defaultMode = Mode.prefer

    var mode: Mode
    /// What the server's certificate must chain to; `nil` when no CA was given (or TLS is off).
    var trustRoots: NIOSSLTrustRoots?

    /// - Parameter query: the URL's query items, `nil` when there is no URL.
    /// - Throws: ``DatabaseURLError`` naming the setting at fault.
    init(query: [URLQueryItem]?, environment: [String: String]) throws(DatabaseURLError) {
        func setting(_ name: String, _ variable: String) -> (value: String, parameter: String)? {
            if let item = query?.last(where: { $0.name == name }) { return (item.value ?? "", name) }
            if let value = environment[variable], !value.isEmpty { return (value, variable) }
            return nil
        }
        let root = setting("sslrootcert", "PGSSLROOTCERT")
        let system = root?.value == "system"
        if let given = setting("sslmode", "PGSSLMODE") {
            guard let mode = Mode(rawValue: given.value) else {
                let modes = Mode.allCases.map(\.rawValue).joined(separator: ", ")
                throw DatabaseURLError(.invalidSSLMode, parameter: given.parameter, message: "'\(given.value)' is not one of \(modes)")
            }
            // As libpq: the system's store holds every public CA, so only a host-name check makes it mean anything.
            if system && mode != .verifyFull {
                throw DatabaseURLError(
                    .invalidSSLMode, parameter: given.parameter,
                    message: "'\(mode.rawValue)' is too weak beside sslrootcert=system; use verify-full")
            }
            self.mode = mode
        } else {
            self.mode = system ? .verifyFull : Self.defaultMode
        }

        switch (mode, root) {
        case (.disable, _):
            trustRoots = nil
        case (.verifyCA, nil), (.verifyFull, nil):
            throw DatabaseURLError(
                .missingRootCertificate, parameter: "sslrootcert",
                message: "sslmode=\(mode.rawValue) needs a CA to verify against: sslrootcert=/path/to/ca.pem (or PGSSLROOTCERT), or sslrootcert=system")
        case (_, nil):
            trustRoots = nil
        case (_, let root?):
            trustRoots = system ? .default : .certificates(try Self.certificates(at: root.value, parameter: root.parameter))
        }
    }

    /// The CA certificates in the PEM file at `path`.
    static func certificates(at path: String, parameter: String) throws(DatabaseURLError) -> [NIOSSLCertificate] {
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw DatabaseURLError(
                .unreadableRootCertificate, parameter: parameter, file: path,
                message: "the CA file cannot be read", underlying: error)
        }
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw DatabaseURLError(
                .unreadableRootCertificate, parameter: parameter, file: path,
                message: "the CA file is not PEM certificates", underlying: error)
        }
        guard !certificates.isEmpty else {
            throw DatabaseURLError(.unreadableRootCertificate, parameter: parameter, file: path, message: "the CA file holds no PEM certificate")
        }
        return certificates
    }

    /// The TLS settings for the connection; `nil` when TLS is off.
    var configuration: TLSConfiguration? {
        guard mode != .disable else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let trustRoots {
            configuration.trustRoots = trustRoots
            configuration.certificateVerification = mode == .verifyFull ? .fullVerification : .noHostnameVerification
        } else {
            configuration.certificateVerification = .none
        }
        return configuration
    }

    /// The same for one postgres-nio connection (a ``PrimaryRouter``'s look at each host).
    var connectionTLS: PostgresConnection.Configuration.TLS {
        get throws {
            guard let configuration else { return .disable }
            let context = try NIOSSLContext(configuration: configuration)
            return mode == .allow || mode == .prefer ? .prefer(context) : .require(context)
        }
    }

    /// The setting for postgres-nio: `allow` and `prefer` fall back to a plain connection, the others need TLS.
    var clientTLS: PostgresClient.Configuration.TLS {
        guard let configuration else { return .disable }
        return mode == .allow || mode == .prefer ? .prefer(configuration) : .require(configuration)
    }
}
