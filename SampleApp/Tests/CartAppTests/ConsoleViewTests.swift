import Foundation
import Testing

@testable import CartConsole

/// The console's drawing and state, without a terminal.
@Suite("Sample app: the console's screen and keys")
struct ConsoleViewTests {
    func state(carts: Int) -> ConsoleState {
        var state = ConsoleState(url: "http://127.0.0.1:8080/")
        state.carts = (0..<carts).map {
            ShopClient.Cart(
                cartId: String(format: "%08x-0000-4000-8000-000000000000", $0), customer: "customer-with-a-long-name-\($0)",
                status: ["open", "checked_out", "abandoned"][$0 % 3], items: $0, totalCents: $0 * 1_234)
        }
        state.readModel = ShopClient.ReadModel(
            name: "cart_summary", activeVersion: 1, availableVersions: [1, 2],
            versions: [
                .init(version: 1, lifecycle: "active", state: "live", checkpoint: "10/500", eventsApplied: 500, lagEvents: 0, deadLetters: 0),
                .init(
                    version: 2, lifecycle: "building", state: "rebuilding", checkpoint: "0/0", eventsApplied: 0, lagEvents: 500, deadLetters: 0,
                    rebuild: .init(eventsDone: 250, eventsTotal: 500, eventsPerSecond: 1_000)),
            ])
        return state
    }

    @Test(arguments: [(120, 40), (100, 30), (80, 24), (60, 16), (40, 12)])
    func everyFrameFillsTheTerminalExactly(columns: Int, rows: Int) {
        let lines = ConsoleView.draw(state(carts: 50), size: .init(columns: columns, rows: rows))
        #expect(lines.count == rows)
        #expect(lines.allSatisfy { $0.plain.count == columns }, "\(lines.map(\.plain))")
        let text = lines.map(\.plain).joined(separator: "\n")
        if columns >= 80 { #expect(text.contains("readers see v1")) }
        #expect(text.contains("Carts"))
        if rows >= 16 { #expect(text.contains("v1  active"), "\(text)") }
        if rows >= 24 { #expect(text.contains("50%"), "the rebuild's progress: \(text)") }
    }

    @Test func aTooSmallTerminalGetsANoticeNotAGarbledScreen() {
        let lines = ConsoleView.draw(state(carts: 5), size: .init(columns: 30, rows: 8))
        #expect(lines.count == 8 && lines.allSatisfy { $0.plain.count == 30 })
        #expect(lines.map(\.plain).joined().contains("terminal too small"))
    }

    @Test func keysFromEscapeSequences() {
        #expect(Key.parse(Array("\u{1B}[A\u{1B}[Bq".utf8)) == [.up, .down, .character("q")])
        #expect(Key.parse([0x03, 13, 0x1B]) == [.interrupt, .enter, .escape])
        #expect(Key.parse(Array("\u{1B}OC\u{1B}[3~x".utf8)) == [.right, .character("x")])
    }

    @Test func theMigrationKeyBuildsComparesThenPromotes() {
        var state = state(carts: 3)
        #expect(state.handle(.key(.character("m"))) == [.build(version: 2)])
        // Still building: nothing more happens on a refresh.
        let building = state.readModel!
        #expect(!state.handle(.refreshed(carts: state.carts, mine: [], readModel: building)).contains(.compare(old: 1, new: 2)))
        var caughtUp = building
        caughtUp.versions[1] = .init(version: 2, lifecycle: "caught_up", state: "live", checkpoint: "10/500", eventsApplied: 500, lagEvents: 0, deadLetters: 0)
        #expect(state.handle(.refreshed(carts: state.carts, mine: [], readModel: caughtUp)).contains(.compare(old: 1, new: 2)))
        let comparison = ShopClient.Comparison(
            oldVersion: 1, newVersion: 2, samePosition: true, differingRows: 0, tables: [],
            tablesOnlyInOld: [], tablesOnlyInNew: ["product_sales"])
        #expect(state.handle(.compared(comparison)) == [.promote(version: 2)])
        _ = state.handle(.promoted(2))
        #expect(state.migration == .done(2, comparison))
        #expect(state.handle(.key(.character("r"))) == [.rollback])
        #expect(state.handle(.key(.interrupt)) == [.quit])
    }

    @Test func framesRewriteOnlyTheRowsThatChanged() {
        var screen = Screen()
        let size = Terminal.Size(columns: 10, rows: 3)
        let first = screen.update(to: ["aaa", "bbb", "ccc"], size: size)
        #expect(first.contains("\u{1B}[2J") && first.contains("aaa") && first.contains("ccc"))
        let second = screen.update(to: ["aaa", "BBB", "ccc"], size: size)
        #expect(!second.contains("aaa") && second.contains("\u{1B}[2;1H") && second.contains("BBB") && !second.contains("\u{1B}[2J"))
    }
}

extension ConsoleViewTests {
    @Test func aRefreshThatLeftBeforeACartWasOpenedKeepsItSelected() {
        var state = state(carts: 3)
        let stale = state.readModel!
        _ = state.handle(.accepted("opened", cartId: "new-cart", position: "1/1"))
        #expect(state.selectedCart?.cartId == "new-cart")
        // The refresh started before the cart was opened: it knows nothing of it.
        _ = state.handle(.refreshed(carts: state.carts, mine: [], readModel: stale))
        #expect(state.selectedCart?.cartId == "new-cart")
        #expect(state.handle(.key(.character("c"))) == [.checkOut(cart: "new-cart")])
    }
}

extension ConsoleViewTests {
    @Test func aFailedRefreshDoesNotFailTheMigrationButAFailedPromoteDoes() {
        var state = state(carts: 2)
        _ = state.handle(.key(.character("m")))
        _ = state.handle(.failed("the service does not answer", code: "unreachable", effect: .refresh(mine: [])))
        #expect(state.migration == .building(2))
        #expect(state.handle(.failed("already", code: "alreadyRunning", effect: .build(version: 2))) == [])
        #expect(state.migration == .building(2))
        _ = state.handle(.failed("is behind", code: "notCaughtUp", effect: .promote(version: 2)))
        #expect(state.migration == .failed("is behind"))
    }

    @Test func textFromTheServerCannotMoveTheCursor() {
        let line = Line("evil\u{1B}[2J\nname")
        #expect(line.plain == "evil [2J name")
        #expect(!line.rendered(20).dropFirst(4).contains("\u{1B}[2J"))
    }
}

extension ConsoleViewTests {
    @Test func thePickerScrollsToTheSelectedProductOnASmallTerminal() {
        var state = state(carts: 2)
        let skus = (0..<10).map { "SKU-\($0)" }
        state.overlay = .picker(adding: true, choices: skus, selected: 9)
        let text = ConsoleView.draw(state, size: .init(columns: 60, rows: 12)).map(\.plain).joined(separator: "\n")
        #expect(text.contains("▸ SKU-9"), "\(text)")
        #expect(text.contains("esc cancel"))
        #expect(!text.contains("SKU-0"))
    }
}
