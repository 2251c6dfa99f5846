import FoxStore
import Testing

/// toml++ 3.4 (inside TOMLKit 0.6) aborted the process on a table header whose key does not start
/// with a bare key character or a quote: a users.toml with `[^a]` or a lone `[` line stopped
/// foxmq with SIGABRT instead of an error. Found by `scripts/fuzz users-toml`.
@Suite struct UsersFileTableHeaderTests {
    // Goal: each header toml++ would abort on is refused as invalid TOML, naming its line and the
    // column of the character that cannot start a key.
    @Test(arguments: [
        ("[^a]\n", 1, 2),
        ("[[[[[[users]\n", 1, 3),
        ("[\n", 1, 2),
        ("[é]\n", 1, 2),
        ("[ #]\n", 1, 3),
        ("[[=]]\n", 1, 3),
        ("[users.alice]\npassword-hash = \"x\"\n\n  [.a]\n", 4, 4),
        ("\u{FEFF}[^a]\n", 1, 5),
        ("a = \"\"\"\n[ok]\n\"\"\"\n[^b]\n", 4, 2),
    ])
    func headersThatDoNotStartWithAKeyAreRefused(text: String, line: Int, column: Int) throws {
        let error = try #require(throws: UsersFileError.self) { try UsersFile.parse(text, path: "users.toml") }
        guard case .invalidTOML(_, let foundLine, let foundColumn) = error.problem else {
            Issue.record("expected invalid TOML, got \(error.problem)")
            return
        }
        #expect(foundLine == line && foundColumn == column, "\(text.debugDescription)")
    }

    // Goal: brackets that are not table headers (in strings, comments, values and quoted keys)
    // are left to toml++, and files with them still load.
    @Test func bracketsElsewhereAreNotHeaders() throws {
        let hash = UsersFileTests.argon2iHash
        let text = """
            # [^ a comment]
            note = \"\"\"
            [^ inside a multi-line string
            \"\"\"
            literal = '''
            [é]'''
            numbers = [
              [+1, -2],
              [ # a comment in an array
                3 ],
              [{ a = 1 }],
            ]
            ["users"."[x]"]
            password-hash = "\(hash)"

            [ users . 'y' ]
            password-hash = "\(hash)"
            """
        let file = try UsersFile.parse(text, path: "users.toml")
        #expect(file.users == ["[x]": hash, "y": hash])
    }
}
