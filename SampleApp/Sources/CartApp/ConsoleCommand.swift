import ArgumentParser
import CartConsole
import CartService
import Foundation
import KappaCLI
import Logging
import ServiceLifecycle

/// `cart-app console`: the full-screen terminal front end, on a running service or on one it starts.
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "The shop's full-screen terminal front end: shop, watch the read model, migrate it live.",
        discussion: """
            With --url it talks to a running service (`cart-app serve`). Without, it starts the service in \
            this process on a free loopback port, against --database-url, and stops it on exit; the \
            service's log goes to --log-file. Keys: arrows select, n opens a cart, Enter adds a product, \
            x removes a line, c checks out, b abandons, m migrates the read model to v2 (build from the \
            log, compare, switch), r rolls back, ? shows help, q or Ctrl-C quits.
            """)

    @Option(help: "A running cart service, e.g. http://127.0.0.1:8080 (env CART_URL; default: start one here).")
    var url: String?
    @Option(help: "PostgreSQL URL for the service started here (env KAPPA_DATABASE_URL; default: the PG* variables).")
    var databaseURL: String?
    @Option(help: "The read model's name (env CART_READ_MODEL; default cart_summary).") var readModel: String?
    @Option(help: "Schema of the event log (env KAPPA_LOG_SCHEMA; default kappa).") var logSchema: String?
    @Option(help: "Schema of the projection runtime (env KAPPA_RUNTIME_SCHEMA; default kappa_projections).") var runtimeSchema: String?
    @Option(help: "Where the service started here logs (env CART_LOG_FILE; default $TMPDIR/cart-console.log).") var logFile: String?
    @Option(help: "With --url: the service's operator token, for the migration keys (env CART_OPERATOR_TOKEN; default: the one in --operator-token-file).")
    var operatorToken: String?
    @Option(help: "With --url: where `cart-app serve` wrote its random operator token (env CART_OPERATOR_TOKEN_FILE; default $TMPDIR/cart-operator-token).")
    var operatorTokenFile: String?

    func run() async throws {
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            throw ValidationError("the console needs a terminal; use `cart-app serve` and the HTTP API otherwise")
        }
        let environment = ProcessInfo.processInfo.environment
        if let given = url ?? environment["CART_URL"] {
            guard let base = URL(string: given.hasSuffix("/") ? given : given + "/"), base.scheme?.hasPrefix("http") == true else {
                throw ValidationError("--url must look like http://127.0.0.1:8080")
            }
            let token =
                (operatorToken ?? environment["CART_OPERATOR_TOKEN"]).flatMap { $0.isEmpty ? nil : $0 }
                ?? OperatorTokenFile.read(OperatorTokenFile.path(operatorTokenFile, environment))
            await Console(url: base, operatorToken: token).run()
            return
        }
        var configuration = CartServiceConfiguration(database: try DatabaseURL.configuration(url: databaseURL))
        configuration.readModelConnectionString = try DatabaseURL.connectionString(url: databaseURL)
        configuration.logConnectionString = configuration.readModelConnectionString
        configuration.port = 0
        configuration.readModel = readModel ?? environment["CART_READ_MODEL"] ?? configuration.readModel
        configuration.logSchema = logSchema ?? environment["KAPPA_LOG_SCHEMA"] ?? configuration.logSchema
        configuration.runtimeSchema = runtimeSchema ?? environment["KAPPA_RUNTIME_SCHEMA"] ?? configuration.runtimeSchema
        // The screen is the console's: the service logs to a file.
        let path = logFile ?? environment["CART_LOG_FILE"] ?? FileManager.default.temporaryDirectory.appending(path: "cart-console.log").path
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let terminalErrors = dup(STDERR_FILENO)
        guard descriptor >= 0, dup2(descriptor, STDERR_FILENO) >= 0 else { throw ValidationError("cannot write the log file \(path)") }
        close(descriptor)
        // Errors after the console (the service could not start, say) go to the terminal again.
        defer {
            dup2(terminalErrors, STDERR_FILENO)
            close(terminalErrors)
        }
        var logger = Logger(label: "kappa.cart")
        logger.logLevel = .info
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = try await buildApplication(configuration: configuration, logger: logger) { portContinuation.yield($0) }
        let service = Task {
            defer { portContinuation.finish() }
            try await app.runService(gracefulShutdownSignals: [])
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            try await service.value // the service stopped before it listened: its error
            return
        }
        await Console(url: URL(string: "http://127.0.0.1:\(port)/")!, operatorToken: configuration.operatorToken).run()
        // The console is closed and the terminal given back: stop the service, but never keep the
        // user waiting for it — after 5 s the process ends anyway (its leases then expire by time).
        service.cancel()
        let watchdog = Task {
            try await Task.sleep(for: .seconds(5))
            logger.warning("the service did not stop within 5 s of the console closing; exiting anyway")
            Foundation.exit(0)
        }
        _ = await service.result
        watchdog.cancel()
    }
}
