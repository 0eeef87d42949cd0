/// How a piece of text looks.
struct Style: Equatable, Sendable {
    enum Color: Int, Sendable {
        case red = 31
        case green = 32
        case yellow = 33
        case blue = 34
        case magenta = 35
        case cyan = 36
        case white = 37
    }
    var color: Color?
    var bold = false
    var dim = false
    var reverse = false

    static let plain = Style()
    static let bold = Style(bold: true)
    static let dim = Style(dim: true)
    static let reverse = Style(reverse: true)
    static func colored(_ color: Color, bold: Bool = false) -> Style { Style(color: color, bold: bold) }

    var escape: String {
        var codes = ["0"]
        if bold { codes.append("1") }
        if dim { codes.append("2") }
        if reverse { codes.append("7") }
        if let color { codes.append("\(color.rawValue)") }
        return "\u{1B}[" + codes.joined(separator: ";") + "m"
    }
}

/// One row of styled text, cut or padded to a width when drawn.
struct Line: Equatable, Sendable {
    var spans: [(text: String, style: Style)] = []

    init(_ text: String = "", _ style: Style = .plain) {
        if !text.isEmpty { spans = [(Self.printable(text), style)] }
    }

    /// Control characters (newlines, escape codes from a server's text) would move the cursor: each
    /// becomes a space.
    static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) ? " " : $0 }))
    }

    static func == (lhs: Line, rhs: Line) -> Bool {
        lhs.spans.count == rhs.spans.count && zip(lhs.spans, rhs.spans).allSatisfy { $0.text == $1.text && $0.style == $1.style }
    }

    func appending(_ text: String, _ style: Style = .plain) -> Line {
        var line = self
        line.spans.append((Self.printable(text), style))
        return line
    }

    /// The text without styles.
    var plain: String { spans.map(\.text).joined() }

    /// Every span in `style` (a selected row).
    func restyled(_ transform: (Style) -> Style) -> Line {
        var line = self
        line.spans = spans.map { ($0.text, transform($0.style)) }
        return line
    }

    /// Exactly `width` columns: cut with `…` when longer, padded with spaces when `pad`.
    func fitted(_ width: Int, pad: Bool = true) -> Line {
        guard width > 0 else { return Line() }
        var out = Line(), used = 0
        for (text, style) in spans {
            let room = width - used
            guard room > 0 else { break }
            if text.count <= room {
                out.spans.append((text, style))
                used += text.count
            } else {
                out.spans.append((String(text.prefix(room - 1)) + "…", style))
                used = width
            }
        }
        if pad && used < width {
            let last = out.spans.last?.style ?? .plain
            out.spans.append((String(repeating: " ", count: width - used), last.reverse ? last : .plain))
        }
        return out
    }

    /// The characters to write: styles as escape codes.
    func rendered(_ width: Int) -> String {
        fitted(width).spans.map { $0.style.escape + $0.text }.joined()
    }
}
