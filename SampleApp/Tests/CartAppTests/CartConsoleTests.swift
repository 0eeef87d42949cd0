import CartDomain
import CartService
import Foundation
import Kappa
import KappaPostgres
import KappaTesting
import Logging
import PostgresNIO
import Testing

/// The terminal front end, driven as a person would: `cart-app console` in a real terminal (tmux),
/// keys sent with send-keys, the screen read with capture-pane.
@Suite("Sample app: the terminal front end", .serialized)
struct CartConsoleTests {
    @Test func shopMigrateRollBackAndQuitUnderTmux() async throws {
        let tmux = try Tmux(columns: 120, rows: 40)
        try await TestDatabase.withSchema(prefix: "cart_tui") { client, schema in
            // Whatever happens, the console (and its service's connections) end before the schema is dropped.
            defer { tmux.kill() }
            let store = try PostgresEventStore(client: client, configuration: .init(schema: schema), logger: Logger(label: "cart.test"))
            try await store.migrate()
            let seeded = try await CartSeeder(store: store, history: ShopHistory(seed: 5, start: Date(timeIntervalSince1970: 1_800_000_000)))
                .seed(carts: 300)
            #expect(seeded.cartsAppended == 300)
            let readModel = "carts_\(schema.suffix(8))"
            let log = FileManager.default.temporaryDirectory.appending(path: "cart-console-\(schema).log").path
            defer { try? FileManager.default.removeItem(atPath: log) }
            // A shell in the terminal runs the console, then shows how it left the terminal.
            try tmux.type(
                "\(try cartApp()) console --log-schema \(schema) --runtime-schema \(schema)_rt --read-model \(readModel) --log-file \(log);"
                    + " echo EXIT=$?; stty -a | grep -o -- '-\\?icanon\\|-\\?echo ' | tr '\\n' ' '; echo", enter: true)

            try await tmux.waitFor("it starts and lists the carts") { $0.contains("readers see v1") && $0.contains("200 from the read model") }
            try tmux.keys("n")
            try await tmux.waitFor("a new cart, selected") { $0.contains("★") && $0.contains("Cart") && $0.contains("visitor-1") && $0.contains("CartOpened") }
            try tmux.keys("Enter")
            try await tmux.waitFor("the product picker") { $0.contains("Add a product") }
            try tmux.keys("Down", "Enter") // the second product: TEA-BLACK
            try await tmux.waitFor("the item in the cart, read back from the read model") {
                $0.contains("lines: TEA-BLACK ×1") && $0.contains("ItemAddedToCart") && $0.contains("1 item · total 11.90")
            }
            try tmux.keys("m")
            try await tmux.waitFor("v2 built, compared and switched to", timeout: .seconds(60)) {
                $0.contains("readers now see v2") && $0.contains("equal on shared columns") && $0.contains("new tables: cart_lines, product_sales")
            }
            try tmux.keys("r")
            try await tmux.waitFor("rolled back") { $0.contains("readers see v1 again") && $0.contains("readers see v1 ") }
            try tmux.keys("?")
            try await tmux.waitFor("the help") { $0.contains("Any key closes this help.") }
            try tmux.keys("Escape", "q")
            try await tmux.waitFor("the console quit and the terminal is usable again") { $0.contains("EXIT=0") && $0.contains("icanon echo") }
            #expect(!tmux.screen().contains("-icanon"))
            // Ctrl-C quits as cleanly, from a narrow terminal.
            try tmux.run(["resize-window", "-t", "main", "-x", "60", "-y", "18"], output: false)
            try tmux.type(
                "clear; \(try cartApp()) console --log-schema \(schema) --runtime-schema \(schema)_rt --read-model \(readModel) --log-file \(log);"
                    + " echo EXIT=$?; stty -a | grep -o -- '-\\?icanon\\|-\\?echo ' | tr '\\n' ' '; echo", enter: true)
            try await tmux.waitFor("it starts in a narrow terminal") { $0.contains("v1  active") && $0.contains("Carts") }
            try tmux.keys("C-c")
            try await tmux.waitFor("Ctrl-C quit and the terminal is usable again") { $0.contains("EXIT=0") && $0.contains("icanon echo") }
            #expect(!tmux.screen().contains("-icanon"))

            for name in [readModel, "\(readModel)_v1", "\(readModel)_v2", "\(schema)_rt"] {
                try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(name)\" CASCADE"))
            }
        }
        try await eventually("the test's tmux server is gone") { !tmux.isRunning }
    }
}

/// The built `cart-app` next to the test bundle.
func cartApp() throws -> String {
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let candidates = [directory, directory.deletingLastPathComponent(), Bundle.main.bundleURL.deletingLastPathComponent()]
        .map { $0.appending(path: "cart-app") }
    guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: candidates.map(\.path).joined(separator: ", ")])
    }
    return binary.path
}

/// A tmux server of this test's own (its own socket, this process's environment) with one window.
struct Tmux: Sendable {
    let socket = "kappa-test-\(UUID().uuidString.prefix(8))"

    init(columns: Int, rows: Int) throws {
        try run(["new-session", "-d", "-s", "main", "-x", "\(columns)", "-y", "\(rows)", "bash --norc --noprofile"], output: false)
    }

    /// Runs `tmux ARGUMENTS` to the end; its standard output when `output`. Spawned directly and
    /// waited for with waitpid: Foundation's `Process` notices an exit through a descriptor that the
    /// tmux server (forked by the first client) inherits and keeps open, so it would wait forever.
    @discardableResult
    func run(_ arguments: [String], output: Bool = true) throws -> String {
        let file = FileManager.default.temporaryDirectory.appending(path: "tmux-\(UUID().uuidString).out").path
        defer { unlink(file) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output ? file : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = (["tmux", "-L", socket] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // The test's threads block most signals, and a spawned process inherits that mask: tmux (and
        // the shell and console it starts) would never see SIGHUP, SIGTERM or SIGCHLD. Start clean.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid = pid_t()
        guard posix_spawnp(&pid, "tmux", &actions, &attributes, argv, environ) == 0 else { throw TmuxFailed(arguments: arguments, status: -1) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw TmuxFailed(arguments: arguments, status: status) }
        return output ? ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "") : ""
    }

    func type(_ text: String, enter: Bool) throws {
        try run(["send-keys", "-t", "main", "-l", text], output: false)
        if enter { try keys("Enter") }
    }

    func keys(_ keys: String...) throws { try run(["send-keys", "-t", "main"] + keys, output: false) }

    func screen() -> String { (try? run(["capture-pane", "-p", "-t", "main"])) ?? "" }

    /// Waits until the screen satisfies `condition`; on a timeout the error shows the screen.
    func waitFor(_ what: String, timeout: Duration = .seconds(20), _ condition: @escaping @Sendable (String) -> Bool) async throws {
        do {
            try await eventually(what, timeout: timeout) { condition(screen()) }
        } catch let error as ConditionTimedOut {
            throw TmuxScreen(waitingFor: error.description, screen: screen())
        }
    }

    func kill() { _ = try? run(["kill-server"], output: false) }

    /// Whether the server still runs (it has a session).
    var isRunning: Bool { (try? run(["has-session", "-t", "main"], output: false)) != nil }

    struct TmuxFailed: Error {
        let arguments: [String]
        let status: Int32
    }
    struct TmuxScreen: Error, CustomStringConvertible {
        let waitingFor: String, screen: String
        var description: String { "\(waitingFor); the screen:\n\(screen)" }
    }
}
