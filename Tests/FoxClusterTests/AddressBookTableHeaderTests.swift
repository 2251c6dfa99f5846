import Foundation
import FoxCluster
import Testing

/// toml++ 3.4 (inside TOMLKit 0.6) aborted the process on a table header whose key does not start
/// with a bare key character or a quote: an address book with `[[^ddresses]]` stopped foxmq with
/// SIGABRT instead of an error. Found by `scripts/fuzz address-book`.
@Suite struct AddressBookTableHeaderTests {
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
}
