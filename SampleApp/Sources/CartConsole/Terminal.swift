import Foundation

#if canImport(Glibc)
    import Glibc
    /// write(2) and signal(3) by names `Terminal`'s own `write` and a loop's `signal` do not hide.
    private let systemWrite = Glibc.write
    private let systemSignal = Glibc.signal
#elseif canImport(Darwin)
    import Darwin
    private let systemWrite = Darwin.write
    private let systemSignal = Darwin.signal
#else
    #error("The console needs a POSIX terminal: Linux (Glibc) or macOS (Darwin).")
#endif

/// The controlling terminal for a full-screen program: raw keys, the alternate screen, a hidden cursor
/// — and everything put back on exit, on Ctrl-C (read as a key, so the program quits cleanly), and on
/// SIGTERM or SIGHUP.
enum Terminal {
    struct Size: Equatable, Sendable {
        var columns: Int
        var rows: Int
    }

    /// The settings to put back; set by ``enter()``.
    nonisolated(unsafe) private static var original: termios?

    /// Whether standard input and output are a terminal.
    static var isInteractive: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 }

    static func size() -> Size {
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 {
            return Size(columns: Int(size.ws_col), rows: Int(size.ws_row))
        }
        return Size(columns: 80, rows: 24)
    }

    /// Raw mode (no echo, no line editing, no signals from keys), the alternate screen, no cursor.
    static func enter() {
        var settings = termios()
        guard tcgetattr(STDIN_FILENO, &settings) == 0 else { return }
        original = settings
        settings.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        settings.c_iflag &= ~tcflag_t(IXON | ICRNL | BRKINT | INPCK | ISTRIP)
        // A read returns after one byte (VMIN), with no timeout (VTIME); the indices differ by platform.
        withUnsafeMutableBytes(of: &settings.c_cc) {
            $0[Int(VMIN)] = 1
            $0[Int(VTIME)] = 0
        }
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &settings)
        write("\u{1B}[?1049h\u{1B}[?25l\u{1B}[2J")
        atexit { Terminal.restore() }
        _ = resetBytes // made now: a signal handler must not allocate
        for signal in [SIGTERM, SIGHUP] {
            _ = systemSignal(signal) { number in
                // Only write(2) and tcsetattr(3) here: both are async-signal-safe.
                Terminal.resetBytes.withUnsafeBufferPointer { _ = systemWrite(STDOUT_FILENO, $0.baseAddress, $0.count) }
                if var settings = Terminal.original { tcsetattr(STDIN_FILENO, TCSAFLUSH, &settings) }
                _exit(128 + number)
            }
        }
    }

    /// Plain style, the cursor shown, the main screen back.
    static let resetBytes = Array("\u{1B}[0m\u{1B}[?25h\u{1B}[?1049l".utf8)

    /// Puts the terminal back as it was: cursor, main screen, settings. Safe to call twice.
    static func restore() {
        guard var settings = original else { return }
        original = nil
        write(String(decoding: resetBytes, as: UTF8.self))
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &settings)
    }

    static func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { systemWrite(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { if errno == EINTR { continue } else { return } }
            offset += written
        }
    }

    /// Keys as they are typed, read on a thread of their own (a read blocks).
    static func keys() -> AsyncStream<Key> {
        let (stream, continuation) = AsyncStream.makeStream(of: Key.self)
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 64)
            while true {
                let count = read(STDIN_FILENO, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else {
                    continuation.finish()
                    return
                }
                for key in Key.parse(Array(buffer[0..<count])) { continuation.yield(key) }
            }
        }
        thread.start()
        return stream
    }

    /// The size whenever it changes, checked every 100 ms (cheaper to reason about than SIGWINCH,
    /// whose handler could do nothing but set a flag).
    static func resizes() -> AsyncStream<Size> {
        AsyncStream { continuation in
            let task = Task {
                var last = size()
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(100))
                    let now = size()
                    if now != last {
                        continuation.yield(now)
                        last = now
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// A key press.
enum Key: Equatable, Sendable {
    case up, down, left, right, enter, escape, backspace, tab, interrupt
    case character(Character)

    /// Keys in what one read returned: escape sequences for arrows, Ctrl-C, printable characters.
    static func parse(_ bytes: [UInt8]) -> [Key] {
        var keys: [Key] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x1B {
                if index + 2 < bytes.count, bytes[index + 1] == UInt8(ascii: "[") || bytes[index + 1] == UInt8(ascii: "O") {
                    switch bytes[index + 2] {
                    case UInt8(ascii: "A"): keys.append(.up)
                    case UInt8(ascii: "B"): keys.append(.down)
                    case UInt8(ascii: "C"): keys.append(.right)
                    case UInt8(ascii: "D"): keys.append(.left)
                    default: break
                    }
                    index += 3
                    // Skip the rest of a longer sequence (e.g. ESC [ 3 ~).
                    while index < bytes.count, bytes[index - 1] != UInt8(ascii: "~"), (0x30...0x3F).contains(bytes[index - 1]) { index += 1 }
                    continue
                }
                keys.append(.escape)
            } else if byte == 0x03 {
                keys.append(.interrupt)
            } else if byte == 13 || byte == 10 {
                keys.append(.enter)
            } else if byte == 127 || byte == 8 {
                keys.append(.backspace)
            } else if byte == 9 {
                keys.append(.tab)
            } else if byte >= 0x20 && byte < 0x7F {
                keys.append(.character(Character(UnicodeScalar(byte))))
            }
            index += 1
        }
        return keys
    }
}
