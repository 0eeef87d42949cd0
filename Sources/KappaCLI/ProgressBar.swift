import Foundation
import KappaPostgres
import Synchronization

/// Shows a rebuild's progress: a bar redrawn in place on a terminal, plain lines (every few seconds)
/// when standard error is not a terminal (CI logs, pipes).
final class ProgressBar: Sendable {
    let interactive: Bool
    let width: Int
    private let lastLine = LockedValue(ContinuousClock.now - .seconds(60))

    init(interactive: Bool = isatty(STDERR_FILENO) == 1, width: Int = ProgressBar.terminalWidth()) {
        self.interactive = interactive
        self.width = width
    }

    func update(_ progress: RebuildProgress) {
        if interactive {
            FileHandle.standardError.write(Data("\r\u{1B}[2K\(Self.bar(progress, width: width))".utf8))
        } else {
            let now = ContinuousClock.now
            guard lastLine.exchange(ifOlderThan: .seconds(2), now: now) else { return }
            FileHandle.standardError.write(Data("\(Self.line(progress))\n".utf8))
        }
    }

    func finish(_ progress: RebuildProgress?) {
        if interactive {
            if let progress { FileHandle.standardError.write(Data("\r\u{1B}[2K\(Self.bar(progress, width: width))".utf8)) }
            FileHandle.standardError.write(Data("\n".utf8))
        } else if let progress {
            FileHandle.standardError.write(Data("\(Self.line(progress))\n".utf8))
        }
    }

    /// `cart_summary v2 [#######.......]  52%  520,000/1,000,000 events  243,100 ev/s  ETA 0:02`, fitted to `width`.
    static func bar(_ p: RebuildProgress, width: Int) -> String {
        let fraction = p.eventsTotal > 0 ? min(1, Double(p.eventsDone) / Double(p.eventsTotal)) : 1
        let prefix = "\(p.projection) v\(p.version) "
        let suffix = String(format: " %3d%%  ", Int(fraction * 100)) + "\(grouped(p.eventsDone))/\(grouped(p.eventsTotal)) events  "
            + "\(grouped(Int(p.eventsPerSecond))) ev/s  ETA \(eta(p.remaining))"
        let room = width - prefix.count - suffix.count - 2
        guard room >= 10 else { return String((prefix + suffix).prefix(max(0, width - 1))) }
        let filled = Int(Double(room) * fraction)
        return prefix + "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: room - filled) + "]" + suffix
    }

    /// A plain line for logs.
    static func line(_ p: RebuildProgress) -> String {
        let percent = p.eventsTotal > 0 ? Int(Double(p.eventsDone) / Double(p.eventsTotal) * 100) : 100
        return "\(p.projection) v\(p.version): \(p.eventsDone)/\(p.eventsTotal) events (\(percent)%), "
            + "\(Int(p.eventsPerSecond)) events/s, \(p.partitions) partition\(p.partitions == 1 ? "" : "s"), ETA \(eta(p.remaining))"
    }

    static func eta(_ remaining: Duration?) -> String {
        guard let remaining else { return "--:--" }
        let seconds = Int(remaining.components.seconds)
        return seconds >= 3600 ? String(format: "%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60)
                               : String(format: "%d:%02d", seconds / 60, seconds % 60)
    }

    static func grouped(_ value: Int) -> String {
        let digits = String(value)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return out
    }

    static func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init) ?? 80
    }
}

/// The time of the last plain progress line.
final class LockedValue: Sendable {
    private let state: Mutex<ContinuousClock.Instant>
    init(_ value: ContinuousClock.Instant) { state = Mutex(value) }

    /// Sets the time to `now` and returns `true` when the last one is older than `interval`.
    func exchange(ifOlderThan interval: Duration, now: ContinuousClock.Instant) -> Bool {
        state.withLock { last in
            guard now - last >= interval else { return false }
            last = now
            return true
        }
    }
}
