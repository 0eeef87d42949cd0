import Foundation
import PostgresNIO

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A second PostgreSQL cluster of this machine's PostgreSQL, started for a test and removed after it:
/// a new data directory (initdb), a server on a free loopback port, trust authentication for the
/// `postgres` role. Run as the `postgres` user when the tests run as root (initdb refuses root).
public struct ThrowAwayCluster: Sendable {
    /// The cluster's data directory.
    public let directory: URL
    /// The loopback port the server listens on.
    public let port: Int

    /// The client configuration of the cluster's `database`, as its superuser.
    public func configuration(database: String = "postgres") -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(host: "127.0.0.1", port: port, username: "postgres", password: nil, database: database, tls: .disable)
        configuration.options.maximumConnections = 10
        return configuration
    }

    /// The `PG*` variables that point libpq's tools (psql, pg_restore) at the cluster.
    public var environment: [String: String] {
        ["PGHOST": "127.0.0.1", "PGPORT": "\(port)", "PGUSER": "postgres", "PGDATABASE": "postgres", "PGPASSWORD": ""]
    }

    /// Starts a cluster, runs `body`, and stops and removes the cluster, whatever `body` does.
    ///
    /// - Parameter settings: Server settings (`name=value`) over the defaults, `fsync=off` among them;
    ///   `["fsync=on"]` for a cluster whose figures must be durable.
    public static func with<R: Sendable>(
        settings: [String] = [], _ body: @Sendable (ThrowAwayCluster) async throws -> R
    ) async throws -> R {
        let directory = FileManager.default.temporaryDirectory.appending(path: "kappa-cluster-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let cluster = ThrowAwayCluster(directory: directory, port: try freePort())
        do {
            try await cluster.start(settings: settings)
            let result = try await body(cluster)
            await cluster.remove()
            return result
        } catch {
            await cluster.remove()
            throw error
        }
    }

    private var data: String { directory.appending(path: "data").path }

    private func start(settings: [String]) async throws {
        if getuid() == 0 { try await pgTool("/bin/chown", ["postgres:postgres", directory.path]) }
        try await server("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-N", "-E", "UTF8", "--no-instructions"])
        let options =
            "-p \(port) -c listen_addresses=127.0.0.1 -k \(directory.path) -c fsync=off -c max_prepared_transactions=5"
            + settings.map { " -c \($0)" }.joined()
        try await server("pg_ctl", ["-D", data, "-o", options, "-l", directory.appending(path: "server.log").path, "-w", "start"])
    }

    private func remove() async {
        try? await server("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs one of the server's programs as the cluster's owner.
    private func server(_ program: String, _ arguments: [String]) async throws {
        let path = try postgresProgram(program)
        if getuid() == 0 {
            try await pgTool("/usr/sbin/runuser", ["-u", "postgres", "--", path] + arguments)
        } else {
            try await pgTool(path, arguments)
        }
    }
}

/// The path of one of PostgreSQL's programs (`pg_dump`, `initdb`, …) of the newest version installed.
public func postgresProgram(_ name: String) throws -> String {
    let root = "/usr/lib/postgresql"
    let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
    for version in versions.reversed() where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/\(name)") {
        return "\(root)/\(version)/bin/\(name)"
    }
    throw ToolFailed(command: name, status: -1, output: "not found under \(root)/*/bin")
}

/// Runs `path` with `arguments` to its end; its standard output. `environment` is added to this
/// process's. Throws ``ToolFailed`` with what it printed when it exits non-zero.
///
/// Spawned directly and reaped with waitpid on a thread of its own: Foundation's `Process` notices an
/// exit through a descriptor that a server the tool starts (`pg_ctl start`) inherits and keeps open,
/// so it would wait for as long as the server runs.
@discardableResult
public func pgTool(_ path: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> String {
    let output = FileManager.default.temporaryDirectory.appending(path: "tool-\(UUID().uuidString).out").path
    let errors = FileManager.default.temporaryDirectory.appending(path: "tool-\(UUID().uuidString).err").path
    defer {
        unlink(output)
        unlink(errors)
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    let envp = variables.map { strdup($0) } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var pid = pid_t()
    let spawned = posix_spawn(&pid, path, &actions, nil, argv, envp)
    guard spawned == 0 else { throw ToolFailed(command: path, status: spawned, output: String(cString: strerror(spawned))) }
    let child = pid
    let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
        Thread {
            var status: Int32 = 0
            while waitpid(child, &status, 0) == -1 && errno == EINTR {}
            continuation.resume(returning: status)
        }.start()
    }
    let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    let exited = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    guard exited == 0 else {
        let text = printed + ((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")
        throw ToolFailed(command: ([path] + arguments).joined(separator: " "), status: exited, output: text)
    }
    return printed
}

/// A PostgreSQL program that exited with a failure, with what it printed.
public struct ToolFailed: Error, CustomStringConvertible {
    /// The program and its arguments.
    public var command: String
    /// Its exit status.
    public var status: Int32
    /// What it wrote to standard output and standard error.
    public var output: String
    public var description: String { "\(command) exited with \(status): \(output)" }
}

/// A loopback TCP port nobody listens on now.
private func freePort() throws -> Int {
    #if canImport(Glibc)
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
        let socket = Darwin.socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard socket >= 0 else { throw ToolFailed(command: "socket", status: errno, output: "no socket for a free port") }
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
    }
    guard bound else { throw ToolFailed(command: "bind", status: errno, output: "no free loopback port") }
    return Int(UInt16(bigEndian: address.sin_port))
}
