import FoxStore
import Testing

/// toml++ 3.4 (inside TOMLKit 0.6) aborted the process on a table header whose key does not start
/// with a bare key character or a quote (a users.toml with `[^a]` or a lone `[` line, found by
/// `scripts/fuzz users-toml`), and on a `}` or a Unicode line separator where an array value is
/// expected (`a=[}`, found by `scripts/fuzz address-book`): foxmq stopped with SIGABRT instead of
/// an error.
@Suite struct UsersFileTOMLAbortTests {
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

    // Goal: a `}` where an array value is expected, and a line separator TOML does not know
    // outside strings and comments, are refused as invalid TOML at their line and column.
    @Test(arguments: [
        ("a=[}", 1, 4, "'}'"),
        ("k=[}", 1, 4, "'}'"),
        ("a = [1,}\n", 1, 8, "'}'"),
        ("a = [\n  1, # a comment\n  }\n", 3, 3, "'}'"),
        ("a = [ {}, }\n", 1, 11, "'}'"),
        ("a = { b = [ } }\n", 1, 13, "'}'"),
        ("a = [[1], [}]]\n", 1, 12, "'}'"),
        ("a=[\u{2028}]", 1, 4, "U+2028"),
        ("a=[1,\u{2029}]", 1, 6, "U+2029"),
        ("a=[\u{85}1]", 1, 4, "U+0085"),
        ("b = 'x'\n\u{2028}a = 1\n", 2, 1, "U+2028"),
    ])
    func textOnWhichTomlPlusPlusAbortsIsRefused(text: String, line: Int, column: Int, named: String) throws {
        let error = try #require(throws: UsersFileError.self) { try UsersFile.parse(text, path: "users.toml") }
        guard case .invalidTOML(let message, let foundLine, let foundColumn) = error.problem else {
            Issue.record("expected invalid TOML, got \(error.problem)")
            return
        }
        #expect(foundLine == line && foundColumn == column, "\(text.debugDescription)")
        #expect(message.contains(named), "\(message)")
        #expect("\(error)".contains("users.toml"))
    }

    // Goal: braces and line separators inside strings and comments, and inline tables in arrays,
    // are left to toml++, and a file with them still loads.
    @Test func bracesAndSeparatorsInStringsAndCommentsAreLeftAlone() throws {
        let hash = UsersFileTests.argon2iHash
        let text = """
            # a comment with } and \u{2028} and \u{85}
            tables = [ { a = 1 }, {}, { b = [ {} ] } ]
            strings = [ "}", '}', \"\"\"
            }\u{2029}\"\"\", # }
              '''}\u{2028}''' ]
            ["users"."}"]
            password-hash = "\(hash)"
            """
        let file = try UsersFile.parse(text, path: "users.toml")
        #expect(file.users == ["}": hash])
    }
}
