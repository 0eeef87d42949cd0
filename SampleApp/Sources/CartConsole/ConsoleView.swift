import Foundation

/// Draws a ``ConsoleState`` as rows of a given size: side by side on a wide terminal, stacked on a
/// narrow one, and a plain notice when the terminal is too small. Pure: tests draw without a terminal.
enum ConsoleView {
    static let minimum = Terminal.Size(columns: 40, rows: 12)

    static func draw(_ state: ConsoleState, size: Terminal.Size) -> [Line] {
        let (width, height) = (size.columns, size.rows)
        guard width >= minimum.columns, height >= minimum.rows else {
            return (0..<height).map { row in
                row == height / 2 ? Line("terminal too small (\(width)x\(height)); q quits").fitted(width) : Line().fitted(width)
            }
        }
        var rows: [Line] = [title(state, width: width)]
        let body = height - 3
        if width >= 100 {
            let left = max(40, width * 9 / 20), right = width - left - 1
            let cartRows = body / 2
            let leftPanel = carts(state, width: left, height: body)
            let rightPanel = cart(state, width: right, height: cartRows) + readModel(state, width: right, height: body - cartRows)
            for index in 0..<body {
                rows.append(leftPanel[index].fitted(left).appending("│", .dim).appendingLine(rightPanel[index].fitted(right)))
            }
        } else {
            let cartsHeight = max(4, body * 2 / 5), cartHeight = max(4, body / 4)
            rows += carts(state, width: width, height: cartsHeight)
            rows += cart(state, width: width, height: cartHeight)
            rows += readModel(state, width: width, height: body - cartsHeight - cartHeight)
        }
        rows.append(messageLine(state, width: width))
        rows.append(Line(" ↑↓ select  n new cart  ⏎ add  x remove  c checkout  b abandon  m migrate  r rollback  ? help  q quit", .dim))
        rows = rows.map { $0.fitted(width) }
        switch state.overlay {
        case .none: break
        case .help: rows = overlay(help, on: rows, width: width, title: "Keys")
        case .picker(let adding, let choices, let selected):
            let prices = Dictionary(state.products.map { ($0.sku, $0) }, uniquingKeysWith: { a, _ in a })
            // As many choices as fit (borders, the hint and a margin aside), scrolled to keep the selected one.
            let room = max(1, height - 6)
            let first = min(max(0, selected - room / 2), max(0, choices.count - room))
            let items = choices.enumerated().dropFirst(first).prefix(room).map { index, sku in
                let text = prices[sku].map { "\(sku)  \($0.name)  \(money($0.priceCents))" } ?? sku
                return Line(index == selected ? "▸ \(text)" : "  \(text)", index == selected ? .reverse : .plain)
            }
            rows = overlay(
                items + [Line("↑↓ choose  ⏎ \(adding ? "add 1" : "remove")  esc cancel", .dim)], on: rows, width: width,
                title: adding ? "Add a product" : "Remove a line")
        }
        return rows
    }

    static let help: [Line] = [
        Line("↑ ↓      select a cart"),
        Line("n        open a new cart"),
        Line("⏎ or a   add a product to the selected cart"),
        Line("x        remove a line"),
        Line("c / b    check out / abandon the cart"),
        Line("m        migrate the read model to its newest version:"),
        Line("         build it from the log beside the serving one,", .dim),
        Line("         compare the two, then switch readers over", .dim),
        Line("r        roll back to the previous version"),
        Line("q        quit (Ctrl-C too)"),
        Line("Any key closes this help.", .dim),
    ]

    static func title(_ state: ConsoleState, width: Int) -> Line {
        var line = Line(" Kappa shop ", Style(bold: true, reverse: true)).appending("· \(state.url) ", .reverse)
        if let readModel = state.readModel {
            line = line.appending("· \(readModel.name): readers see ", .reverse)
                .appending(readModel.activeVersion.map { "v\($0)" } ?? "nothing yet", Style(bold: true, reverse: true)).appending(" ", .reverse)
        }
        return line.fitted(width).restyled {
            var s = $0
            s.reverse = true
            return s
        }
    }

    static func header(_ text: String, width: Int) -> Line {
        Line("── ", .dim).appending(text, .bold).appending(" " + String(repeating: "─", count: max(0, width - text.count - 4)), .dim)
    }

    static func carts(_ state: ConsoleState, width: Int, height: Int) -> [Line] {
        let rows = state.rows
        var lines = [header("Carts (\(state.mine.count) yours, \(state.carts.count) from the read model)", width: width)]
        let visible = height - 1
        let first = min(max(0, state.selected - visible / 2), max(0, rows.count - visible))
        for index in first..<min(rows.count, first + visible) {
            let cart = rows[index]
            let mark = state.myCartIDs.contains(cart.cartId) ? "★" : " "
            var line = Line("\(mark) \(cart.cartId.prefix(8)) ").appending(pad(cart.customer, 13))
                .appending(pad(cart.status.replacingOccurrences(of: "_", with: " "), 12), statusStyle(cart.status))
                .appending(String(format: "%3d  ", cart.items)).appending(pad(money(cart.totalCents), 9, right: true))
            if index == state.selected {
                line = line.fitted(width).restyled {
                    var s = $0
                    s.reverse = true
                    return s
                }
            }
            lines.append(line)
        }
        if rows.isEmpty { lines.append(Line("  no carts yet: press n to open one", .dim)) }
        return padded(lines, width: width, height: height)
    }

    static func cart(_ state: ConsoleState, width: Int, height: Int) -> [Line] {
        guard let cart = state.cart, cart.cartId == state.selectedCart?.cartId else {
            return padded([header("Cart", width: width), Line("  select a cart", .dim)], width: width, height: height)
        }
        var lines = [header("Cart \(cart.cartId.prefix(8)) · \(cart.customer)", width: width)]
        lines.append(
            Line("  ").appending(cart.status.replacingOccurrences(of: "_", with: " "), statusStyle(cart.status))
                .appending(" · \(cart.items) item\(cart.items == 1 ? "" : "s") · total \(money(cart.totalCents))"))
        if cart.secondsToCheckout != nil || cart.abandonedValueCents != nil {
            var v2 = Line("  v2: ", .colored(.cyan))
            if let seconds = cart.secondsToCheckout { v2 = v2.appending("first item → checkout \(Int(seconds)) s  ", .colored(.cyan)) }
            if let value = cart.abandonedValueCents, value > 0 { v2 = v2.appending("abandoned value \(money(value))", .colored(.cyan)) }
            lines.append(v2)
        }
        let skus = state.lines.map { "\($0.sku) ×\($0.quantity)" }
        if !skus.isEmpty { lines.append(Line("  lines: " + skus.joined(separator: ", "))) }
        lines.append(Line("  its events in the log:", .dim))
        for event in state.events.suffix(max(0, height - lines.count)) {
            lines.append(
                Line(String(format: "  %3d ", event.streamVersion)).appending(pad(event.type, 21), .colored(.blue))
                    .appending(" at \(event.position)", .dim))
        }
        return padded(lines, width: width, height: height)
    }

    static func readModel(_ state: ConsoleState, width: Int, height: Int) -> [Line] {
        guard let readModel = state.readModel else { return padded([header("Read model", width: width)], width: width, height: height) }
        var lines = [header("Read model \(readModel.name) · versions", width: width)]
        for version in readModel.versions {
            var line = Line("  v\(version.version)  ").appending(
                pad(version.lifecycle.replacingOccurrences(of: "_", with: " "), 10), lifecycleStyle(version.lifecycle)
            )
            .appending(pad(version.state.replacingOccurrences(of: "_", with: " "), 12))
            if let rebuild = version.rebuild {
                let fraction = rebuild.eventsTotal > 0 ? min(1, Double(rebuild.eventsDone) / Double(rebuild.eventsTotal)) : 1
                let bar = max(10, min(30, width - 60))
                let filled = Int(Double(bar) * fraction)
                line = line.appending("[" + String(repeating: "#", count: filled) + String(repeating: ".", count: bar - filled) + "]", .colored(.yellow))
                    .appending(
                        String(format: " %3d%% ", Int(fraction * 100))
                            + "\(grouped(rebuild.eventsDone))/\(grouped(rebuild.eventsTotal)) events  \(grouped(rebuild.eventsPerSecond)) ev/s")
            } else {
                line = line.appending("at \(version.checkpoint)  lag \(grouped(version.lagEvents))  dead letters \(version.deadLetters)")
            }
            lines.append(line)
            if let error = version.failedError { lines.append(Line("      failed: \(error)", .colored(.red))) }
        }
        lines.append(Line())
        lines += migration(state)
        return padded(lines, width: width, height: height)
    }

    static func migration(_ state: ConsoleState) -> [Line] {
        switch state.migration {
        case .idle:
            return [Line("  m migrates to v\(state.readModel?.availableVersions.max() ?? 2) by replaying the log; r rolls back", .dim)]
        case .building(let version):
            return [
                Line("  Migration: ", .bold).appending(
                    "building v\(version) from the log while v\(state.readModel?.activeVersion ?? 1) serves…", .colored(.yellow))
            ]
        case .comparing(let version):
            return [Line("  Migration: ", .bold).appending("v\(version) caught up; comparing it with the serving version…", .colored(.yellow))]
        case .promoting(let version, let comparison):
            return [Line("  Migration: ", .bold).appending("switching readers to v\(version)…", .colored(.yellow))] + compared(comparison)
        case .done(let version, let comparison):
            return [Line("  Migration: ", .bold).appending("switched — readers now see v\(version)", .colored(.green, bold: true))]
                + (comparison.map(compared) ?? [])
        case .failed(let text):
            return [Line("  Migration failed: ", .colored(.red, bold: true)).appending(text, .colored(.red))]
        }
    }

    static func compared(_ comparison: ShopClient.Comparison) -> [Line] {
        guard comparison.oldVersion > 0 else { return [] }
        var lines = [
            Line("  compared v\(comparison.oldVersion) ↔ v\(comparison.newVersion) at the same position: ")
                .appending(
                    comparison.differingRows == 0 ? "equal on shared columns" : "\(comparison.differingRows) rows differ",
                    comparison.differingRows == 0 ? .colored(.green) : .colored(.red))
        ]
        for table in comparison.tables {
            var line = Line("    \(table.name): \(grouped(table.rowsInOld)) ↔ \(grouped(table.rowsInNew)) rows")
            if !table.columnsOnlyInNew.isEmpty { line = line.appending("; new columns " + table.columnsOnlyInNew.joined(separator: ", "), .colored(.cyan)) }
            lines.append(line)
        }
        if !comparison.tablesOnlyInNew.isEmpty {
            lines.append(Line("    new tables: " + comparison.tablesOnlyInNew.joined(separator: ", "), .colored(.cyan)))
        }
        return lines
    }

    static func messageLine(_ state: ConsoleState, width: Int) -> Line {
        guard let message = state.message else { return Line() }
        return Line(" " + message.text, message.isError ? .colored(.red) : .colored(.green))
    }

    /// `items` in a bordered box in the middle of `rows`.
    static func overlay(_ items: [Line], on rows: [Line], width: Int, title: String) -> [Line] {
        let boxWidth = min(width - 2, max(40, (items.map(\.plain.count).max() ?? 0) + 4))
        let visible = Array(items.prefix(max(1, rows.count - 4)))
        let top = max(1, (rows.count - visible.count - 2) / 2), left = max(0, (width - boxWidth) / 2)
        var rows = rows
        let border = Line(String(repeating: " ", count: left)).appending(
            "┌─ \(title) " + String(repeating: "─", count: max(0, boxWidth - title.count - 5)) + "┐", .bold)
        rows[top] = border.fitted(width)
        for (index, item) in visible.enumerated() where top + 1 + index < rows.count {
            rows[top + 1 + index] = Line(String(repeating: " ", count: left)).appending("│ ", .bold).appendingLine(item.fitted(boxWidth - 4))
                .appending(" │", .bold).fitted(width)
        }
        if top + 1 + visible.count < rows.count {
            rows[top + 1 + visible.count] = Line(String(repeating: " ", count: left)).appending("└" + String(repeating: "─", count: boxWidth - 2) + "┘", .bold)
                .fitted(width)
        }
        return rows
    }

    static func padded(_ lines: [Line], width: Int, height: Int) -> [Line] {
        let cut = Array(lines.prefix(height)).map { $0.fitted(width) }
        return cut + Array(repeating: Line().fitted(width), count: max(0, height - cut.count))
    }

    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let cut = text.count > width - 1 ? String(text.prefix(width - 2)) + "…" : text
        let space = String(repeating: " ", count: max(0, width - cut.count))
        return right ? space + cut : cut + space
    }

    static func money(_ cents: Int) -> String { String(format: "%d.%02d", cents / 100, cents % 100) }

    static func grouped(_ value: Int) -> String {
        let digits = String(value)
        return digits.enumerated().map { index, c in index > 0 && (digits.count - index) % 3 == 0 ? ",\(c)" : "\(c)" }.joined()
    }

    static func statusStyle(_ status: String) -> Style {
        switch status {
        case "checked_out": .colored(.green)
        case "abandoned": .colored(.red)
        default: .colored(.yellow)
        }
    }

    static func lifecycleStyle(_ lifecycle: String) -> Style {
        switch lifecycle {
        case "active": .colored(.green, bold: true)
        case "building", "caught_up": .colored(.yellow)
        default: .dim
        }
    }
}

extension Line {
    func appendingLine(_ other: Line) -> Line {
        var line = self
        line.spans += other.spans
        return line
    }
}
