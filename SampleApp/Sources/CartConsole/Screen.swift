/// Draws frames without flicker: only the rows that changed since the last frame are rewritten, in
/// one write, inside a synchronized update where the terminal supports it; a resize redraws everything.
struct Screen {
    private var previous: [String] = []
    private var size: Terminal.Size?

    /// The bytes that turn the last frame into `lines` (each already fitted to the width).
    mutating func update(to lines: [String], size: Terminal.Size) -> String {
        var out = "\u{1B}[?2026h"
        if size != self.size {
            out += "\u{1B}[0m\u{1B}[2J"
            previous = []
            self.size = size
        }
        for (row, line) in lines.enumerated() where row >= previous.count || previous[row] != line {
            out += "\u{1B}[\(row + 1);1H\u{1B}[0m\(line)\u{1B}[0m\u{1B}[K"
        }
        if lines.count < previous.count {
            for row in lines.count..<previous.count { out += "\u{1B}[\(row + 1);1H\u{1B}[0m\u{1B}[K" }
        }
        previous = lines
        return out + "\u{1B}[?2026l"
    }
}
