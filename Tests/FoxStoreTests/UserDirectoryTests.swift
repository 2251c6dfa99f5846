import FoxStore
import Testing

@Suite struct UserDirectoryTests {
    @Test func addUserCreatesTheDirectoryAndFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let configDir = dir.file("nested/foxmq.d")

        #expect(try UserDirectory.addUser(name: "alice", password: "wonderland", in: configDir) == .added)

        let text = try dir.read("nested/foxmq.d/users.toml")
        #expect(text.hasPrefix("[users.alice]\npassword-hash = \"$argon2id$v=19$m=19456,t=2,p=1$"))
        let users = try UserDirectory.load(fromDirectory: configDir)
        #expect(users.count == 1)
        #expect(users.contains(username: "alice"))
        #expect(users.verify(username: "alice", password: Array("wonderland".utf8)))
        #expect(!users.verify(username: "alice", password: Array("Wonderland".utf8)))
    }

    @Test func addUserReplacesOnlyThatUser() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(
            """
            [users.bob]
            password-hash = "\(UsersFileTests.argon2iHash)"

            [users.alice]
            password-hash = "\(PasswordHasherTests.cffiSecret)"
            """, to: "users.toml")

        #expect(try UserDirectory.addUser(name: "alice", password: Array("new secret".utf8), in: dir.path) == .replaced)

        let file = try UsersFile.load(from: dir.file("users.toml"))
        #expect(file.users["bob"] == UsersFileTests.argon2iHash)
        #expect(file.users["alice"] != PasswordHasherTests.cffiSecret)
        let users = UserDirectory(file)
        #expect(users.verify(username: "alice", password: Array("new secret".utf8)))
        #expect(!users.verify(username: "alice", password: Array("secret".utf8)))
        #expect(users.verify(username: "bob", password: Array("password".utf8)))
        // Rewritten in sorted order.
        #expect(try dir.read("users.toml").hasPrefix("[users.alice]\n"))
    }

    @Test func addUserRefusesABadNameOrACorruptFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let badName = #expect(throws: UsersFileError.self) {
            try UserDirectory.addUser(name: "", password: "x", in: dir.path)
        }
        #expect(badName?.problem == .invalidUserName(user: "", reason: "user name is empty"))
        #expect(try dir.contents().isEmpty)

        try dir.write("[users.alice]\npassword-hash = \"plain\"\n", to: "users.toml")
        let corrupt = #expect(throws: UsersFileError.self) {
            try UserDirectory.addUser(name: "bob", password: "x", in: dir.path)
        }
        #expect(corrupt?.path == dir.file("users.toml"))
        // The corrupt file is left as it was.
        #expect(try dir.read("users.toml") == "[users.alice]\npassword-hash = \"plain\"\n")
    }

    @Test func verifyFromManyThreadsAtOnce() async throws {
        let users = UserDirectory(UsersFile(users: ["alice": PasswordHasherTests.cffiSecret]))
        let results = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<4 {
                group.addTask {
                    users.verify(username: "alice", password: Array((i % 2 == 0 ? "secret" : "nope").utf8))
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 2)
        #expect(results.count == 4)
    }

    @Test func userNameRules() {
        #expect(UserName.isValid("alice"))
        #expect(UserName.isValid("bob smith"))
        #expect(UserName.isValid("ünïcødé-名前"))
        #expect(!UserName.isValid(""))
        #expect(!UserName.isValid("a\u{0}b"))
        #expect(!UserName.isValid("tab\there"))
        #expect(!UserName.isValid(String(repeating: "x", count: 65536)))
        #expect(UserName.isValid(String(repeating: "x", count: 65535)))
    }
}
