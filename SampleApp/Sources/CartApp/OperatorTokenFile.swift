import ArgumentParser
import Foundation

/// Where `serve` leaves the operator token it made up when none was given, for the console on the
/// same machine to read: no setup for a local demo, and the token readable by its owner only.
enum OperatorTokenFile {
    /// `CART_OPERATOR_TOKEN_FILE`, else `$TMPDIR/cart-operator-token`.
    static func path(_ given: String?, _ environment: [String: String]) -> String {
        given ?? environment["CART_OPERATOR_TOKEN_FILE"]
            ?? FileManager.default.temporaryDirectory.appending(path: "cart-operator-token").path
    }

    /// Writes `token` to `path`, mode 0600. A symbolic link there is refused rather than followed (the
    /// default path is in a directory every user can write to).
    static func write(_ token: String, to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ValidationError("cannot write the operator token to \(path) (\(String(cString: strerror(errno)))); give one with --operator-token")
        }
        defer { close(descriptor) }
        // A file that was there already keeps its mode through O_CREAT: set it.
        guard fchmod(descriptor, 0o600) == 0 else {
            throw ValidationError("cannot make \(path) readable by its owner only (\(String(cString: strerror(errno))))")
        }
        try FileHandle(fileDescriptor: descriptor, closeOnDealloc: false).write(contentsOf: Data((token + "\n").utf8))
    }

    /// The token in `path`, if the file is there and holds one.
    static func read(_ path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return token.isEmpty ? nil : token
    }
}
