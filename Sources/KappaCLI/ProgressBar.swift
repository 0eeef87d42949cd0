import Foundation
import KappaPostgres
import Synchronization

/// Shows the progress of long terminal work: a bar redrawn in place when standard error is a
/// terminal, plain lines every few seconds when it is not (CI logs, pipes). Rebuilds use it; so can an
/// application's own commands (a seed, an import).
///
/// ```swift
/// let bar = ProgressBar()
/// bar.update(.init(label: "seed", done: 2_000, total: 10_000, unit: "carts", elapsed: .seconds(3)))
/// bar.finish()
/// ```
public final class ProgressBar: Sendable {
    /// One reading: `done` of `total` `unit`s after `elapsed`; `detail` goes into the plain lines.
    public struct Report: Sendable, Hashable {
        /// What the work is, shown first, such as `cart_summary v2`.
        public var label: String
        /// Units done so far.
        public var done: Int
        /// Units in all; 0 shows as complete.
        public var total: Int
        /// What is counted, in the plural, such as `events`.
        public var unit: String
        /// Time since the work started.
        public var elapsed: Duration
        /// Extra text for the plain lines only, such as `2 partitions`; `nil` for none.
        public var detail: String?
        /// Units per second; default `done / elapsed` (give it when part of `done` was done earlier).
        public var rate: Double?

        /// One reading; `rate` defaults to `done / elapsed`.
        public init(label: String, done: Int, total: Int, unit: String, elapsed: Duration, detail: String? = nil, rate: Double? = nil) {
            (self.label, self.done, self.total, self.unit, self.elapsed, self.detail, self.rate) = (label, done, total, unit, elapsed, detail, rate)
        }

        var fraction: Double { total > 0 ? min(1, Double(done) / Double(total)) : 1 }
        var perSecond: Double {
            if let rate { return rate }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return seconds > 0 ? Double(done) / seconds : 0
        }
        var remaining: Duration? { perSecond > 0 ? .seconds(Double(max(0, total - done)) / perSecond) : nil }
    }

    let interactive: Bool
    let width: Int
    private let state = Mutex<(lastLine: ContinuousClock.Instant, last: Report?)>((ContinuousClock.now - .seconds(60), nil))

    /// - Parameters:
    ///   - interactive: Redraw in place. Default: whether standard error is a terminal.
    ///   - width: Columns to fit. Default: the terminal's width, else `COLUMNS`, else 80.
    public init(interactive: Bool = isatty(STDERR_FILENO) == 1, width: Int = ProgressBar.terminalWidth()) {
        self.interactive = interactive
        self.width = width
    }

    /// Records `report` and shows it: redraws the bar when interactive, else prints a plain line at most
    /// every 2 seconds.
    public func update(_ report: Report) {
        let now = ContinuousClock.now
        let printLine = state.withLock { state in
            state.last = report
            guard !interactive, now - state.lastLine >= .seconds(2) else { return false }
            state.lastLine = now
            return true
        }
        if interactive {
            FileHandle.standardError.write(Data("\r\u{1B}[2K\(Self.bar(report, width: width))".utf8))
        } else if printLine {
            FileHandle.standardError.write(Data("\(Self.line(report))\n".utf8))
        }
    }

    /// Draws the last reading once more and ends the line.
    public func finish() {
        let last = state.withLock { $0.last }
        if interactive {
            if let last { FileHandle.standardError.write(Data("\r\u{1B}[2K\(Self.bar(last, width: width))".utf8)) }
            FileHandle.standardError.write(Data("\n".utf8))
        } else if let last {
            FileHandle.standardError.write(Data("\(Self.line(last))\n".utf8))
        }
    }

    func update(_ progress: RebuildProgress) { update(Self.report(progress)) }

    static func report(_ p: RebuildProgress) -> Report {
        Report(
            label: "\(p.projection) v\(p.version)", done: p.eventsDone, total: p.eventsTotal, unit: "events",
            elapsed: p.elapsed, detail: "\(p.partitions) partition\(p.partitions == 1 ? "" : "s")", rate: p.eventsPerSecond)
    }

    /// `cart_summary v2 [#######.......]  52%  520,000/1,000,000 events  243,100/s  ETA 0:02`, fitted to `width`.
    static func bar(_ p: Report, width: Int) -> String {
        let prefix = "\(p.label) "
        let suffix =
            String(format: " %3d%%  ", Int(p.fraction * 100)) + "\(grouped(p.done))/\(grouped(p.total)) \(p.unit)  "
            + "\(grouped(Int(p.perSecond)))/s  ETA \(eta(p.remaining))"
        let room = width - prefix.count - suffix.count - 2
        guard room >= 10 else { return String((prefix + suffix).prefix(max(0, width - 1))) }
        let filled = Int(Double(room) * p.fraction)
        return prefix + "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: room - filled) + "]" + suffix
    }

    /// A plain line for logs.
    static func line(_ p: Report) -> String {
        "\(p.label): \(p.done)/\(p.total) \(p.unit) (\(Int(p.fraction * 100))%), \(Int(p.perSecond)) \(p.unit)/s, "
            + (p.detail.map { "\($0), " } ?? "") + "ETA \(eta(p.remaining))"
    }

    static func eta(_ remaining: Duration?) -> String {
        guard let remaining else { return "--:--" }
        let seconds = Int(remaining.components.seconds)
        return seconds >= 3600
            ? String(format: "%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60)
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

    /// The terminal's width in columns, else `COLUMNS`, else 80.
    public static func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init) ?? 80
    }
}
