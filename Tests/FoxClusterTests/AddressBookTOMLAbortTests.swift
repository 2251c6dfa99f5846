import Foundation
import FoxCluster
import Testing

/// toml++ 3.4 (inside TOMLKit 0.6) aborted the process on a table header whose key does not start
/// with a bare key character or a quote (an address book with `[[^ddresses]]`) and on a `}` where
/// an array value is expected (`a=[}`): foxmq stopped with SIGABRT instead of an error. Both were
/// found by `scripts/fuzz address-book`.
@Suite struct AddressBookTOMLAbortTests {
    // Goal: the header is refused as invalid TOML naming its line; the same book with the header
    // spelled right loads.
    @Test func aHeaderThatDoesNotStartWithAKeyIsRefused() throws {
        let book = AddressBookFixtures.book([(AddressBookTests.keys[0], "127.0.0.1:19793")])
        #expect(try AddressBook.parse(book, path: "b.toml").entries.count == 1)
        let damaged = book.replacingOccurrences(of: "[[addresses]]", with: "[[^ddresses]]")
        let error = try #require(throws: AddressBookError.self) { try AddressBook.parse(damaged, path: "b.toml") }
        guard case .invalidTOML(_, let line, let column) = error.problem else {
            Issue.record("expected invalid TOML, got \(error.problem)")
            return
        }
        #expect(line == 1 && column == 3)
    }

    /// No control character but tab, LF and CR is valid anywhere in TOML: such a book is
    /// refused, naming the character's line and column, before toml++ reads it.
    @Test(arguments: [
        ("\u{07}a=[}", 1, 1), ("key = 1\n\u{1C}\n", 2, 1), ("a = \"x\u{7F}\"\n", 1, 7), ("# \u{13}\n", 1, 3),
    ])
    func aControlCharacterIsRefused(text: String, line: Int, column: Int) throws {
        let error = try #require(throws: AddressBookError.self) { try AddressBook.parse(text, path: "b.toml") }
        guard case .invalidTOML(let message, let foundLine, let foundColumn) = error.problem else {
            Issue.record("expected invalid TOML, got \(error.problem)")
            return
        }
        #expect(message.hasPrefix("control character U+00"), "\(message)")
        #expect(foundLine == line && foundColumn == column, "\(text.debugDescription)")
        // Tabs and CRLF line ends are TOML's own.
        let book = AddressBookFixtures.book([(AddressBookTests.keys[0], "127.0.0.1:19793")])
        let tabbed = book.replacingOccurrences(of: "\n", with: "\t\r\n")
        #expect(try AddressBook.parse(tabbed, path: "b.toml").entries.count == 1)
    }

    // Goal: the two inputs of the fuzz campaign's crashes (their harness mode byte removed) and a
    // damaged book with a `}` in an array are refused as invalid TOML, naming the position; the
    // book before the damage loads.
    @Test func aBraceWhereAnArrayValueIsExpectedIsRefused() throws {
        for text in ["a=[}", "k=[}"] {
            let error = try #require(throws: AddressBookError.self) { try AddressBook.parse(text, path: "b.toml") }
            guard case .invalidTOML(_, let line, let column) = error.problem else {
                Issue.record("expected invalid TOML, got \(error.problem)")
                continue
            }
            #expect(line == 1 && column == 4)
        }
        let book = AddressBookFixtures.book([(AddressBookTests.keys[0], "127.0.0.1:19793")])
        #expect(try AddressBook.parse(book, path: "b.toml").entries.count == 1)
        let damaged = "note = [\n  'a',\n  }\n" + book
        let error = try #require(throws: AddressBookError.self) { try AddressBook.parse(damaged, path: "b.toml") }
        guard case .invalidTOML(_, let line, let column) = error.problem else {
            Issue.record("expected invalid TOML, got \(error.problem)")
            return
        }
        #expect(line == 3 && column == 3)
        #expect("\(error)".contains("b.toml") && "\(error)".contains("line 3, column 3"))
    }
}
