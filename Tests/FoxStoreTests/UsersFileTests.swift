import FoxStore
import Testing

@Suite struct UsersFileTests {
    static let secretHash = PasswordHasherTests.cffiSecret
    static let argon2iHash =
        "$argon2i$v=19$m=4096,t=3,p=2$c29tZXNhbHRzb21lc2FsdA$mYIO4o1rz9pgnq7vI1g0U3MQ4r8pnqZfGhcQ2HWhCGo"

    @Test func loadsTheOriginalsFormat() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(
            """
            [users.alice]
            password-hash = "\(Self.secretHash)"

            [users.bob]
            password-hash = "\(Self.argon2iHash)"
            """, to: "users.toml")

        let file = try UsersFile.load(from: dir.file("users.toml"))
        #expect(file.users == ["alice": Self.secretHash, "bob": Self.argon2iHash])

        let users = UserDirectory(file)
        #expect(users.count == 2)
        #expect(users.verify(username: "alice", password: Array("secret".utf8)))
        #expect(!users.verify(username: "alice", password: Array("Secret".utf8)))
        #expect(users.verify(username: "bob", password: Array("password".utf8)))
        #expect(!users.verify(username: "bob", password: Array("secret".utf8)))
        #expect(!users.verify(username: "carol", password: Array("secret".utf8)))
    }

    @Test func acceptsOtherTOMLSpellingsAndIgnoresUnknownKeys() throws {
        let text = """
            title = "ignored"
            [users]
            alice = { password-hash = '\(Self.secretHash)', comment = "ignored" }
            "bob smith".password-hash = "\(Self.argon2iHash)"
            """
        let file = try UsersFile.parse(text, path: "inline.toml")
        #expect(file.users == ["alice": Self.secretHash, "bob smith": Self.argon2iHash])
    }

    @Test func missingFileIsEmpty() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        #expect(try UsersFile.load(from: dir.file("users.toml")).users.isEmpty)
        #expect(try UserDirectory.load(fromDirectory: dir.path).isEmpty)
        #expect(try UsersFile.parse("", path: "x").users.isEmpty)
        #expect(try UsersFile.parse("[users]\n", path: "x").users.isEmpty)
    }

    @Test func saveWritesSortedTablesAndLoadsBack() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("users.toml")
        let file = UsersFile(users: [
            "mallory": Self.argon2iHash,
            "alice": Self.secretHash,
            "bob smith": Self.argon2iHash,
            "Zed": Self.secretHash,
            "quote\"back\\slash": Self.secretHash,
        ])
        try file.save(to: path)

        #expect(
            try dir.read("users.toml") == """
                [users.Zed]
                password-hash = "\(Self.secretHash)"

                [users.alice]
                password-hash = "\(Self.secretHash)"

                [users."bob smith"]
                password-hash = "\(Self.argon2iHash)"

                [users.mallory]
                password-hash = "\(Self.argon2iHash)"

                [users."quote\\"back\\\\slash"]
                password-hash = "\(Self.secretHash)"

                """)
        #expect(try UsersFile.load(from: path) == file)
        // New file: owner-only; no temporary file left behind.
        #expect(try dir.permissions("users.toml") == 0o600)
        #expect(try dir.contents() == ["users.toml"])
    }

    @Test func saveReplacesAnExistingFileAndKeepsItsMode() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("users.toml")
        try UsersFile(users: ["alice": Self.secretHash]).save(to: path)
        try dir.setPermissions("users.toml", 0o640)

        try UsersFile(users: ["bob": Self.argon2iHash]).save(to: path)
        #expect(try UsersFile.load(from: path).users == ["bob": Self.argon2iHash])
        #expect(try dir.permissions("users.toml") == 0o640)

        try UsersFile().save(to: path)
        #expect(try dir.read("users.toml") == "[users]\n")
        #expect(try UsersFile.load(from: path).users.isEmpty)
    }

    @Test func saveRefusesWhatLoadWouldReject() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("users.toml")
        #expect(throws: UsersFileError.self) {
            try UsersFile(users: ["alice": "plaintext"]).save(to: path)
        }
        #expect(throws: UsersFileError.self) {
            try UsersFile(users: ["": Self.secretHash]).save(to: path)
        }
        #expect(try dir.contents().isEmpty)
    }

    @Test(arguments: [
        ("[users.alice\npassword-hash = \"x\"\n", "line 1", "invalid TOML"),
        (
            "[users.alice]\npassword-hash = \"\(secretHash)\"\n\n[users.bob]\npassword-hash = \n", "line 5",
            "invalid TOML"
        ),
        ("[users.alice]\npassword = \"secret\"\n", "\"alice\"", "missing password-hash"),
        (
            "[users.alice]\npassword-hash = \"$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW\"\n",
            "\"alice\"", "not an Argon2 PHC string"
        ),
        ("[users.alice]\npassword-hash = \"secret\"\n", "\"alice\"", "not an Argon2 PHC string"),
        ("[users.alice]\npassword-hash = 42\n", "\"alice\"", "must be a string"),
        ("users = \"alice\"\n", "users", "must be a table"),
        ("[users]\nalice = \"\(secretHash)\"\n", "\"alice\"", "must be a table"),
        ("[users.\"\"]\npassword-hash = \"\(secretHash)\"\n", "\"\"", "user name is empty"),
        ("[users.\"a\\u0007b\"]\npassword-hash = \"\(secretHash)\"\n", "U+0007", "control character"),
    ])
    func corruptFilesNameThePathAndTheProblem(text: String, detail: String, problem: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("users.toml")
        try dir.write(text, to: "users.toml")

        let error = #expect(throws: UsersFileError.self) {
            try UsersFile.load(from: path)
        }
        let description = error.map { String(describing: $0) } ?? ""
        #expect(description.hasPrefix(path + ": "), "\(description)")
        #expect(description.contains(problem), "\(description)")
        #expect(description.contains(detail), "\(description)")
        #expect(error?.path == path)
    }

    @Test func invalidUTF8AndUnreadableFilesAreErrors() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("users.toml")
        try dir.writeBytes([0x5B, 0xFF, 0x5D], to: "users.toml")
        let notUTF8 = #expect(throws: UsersFileError.self) { try UsersFile.load(from: path) }
        #expect(notUTF8?.problem == .notUTF8)

        // A directory where the file should be.
        let error = #expect(throws: UsersFileError.self) { try UsersFile.load(from: dir.path) }
        #expect(String(describing: error.map { String(describing: $0) } ?? "").hasPrefix(dir.path + ": "))
        guard case .unreadable = error?.problem else {
            Issue.record("expected .unreadable, got \(String(describing: error?.problem))")
            return
        }
    }
}
