import FoxStore

/// `users-toml`: the reader and the writer of `users.toml` (`UsersFile.parse`, TOMLKit's toml++
/// underneath, the user name rules and `Argon2PHC.parse`; `UsersFile.serialized`). The first byte
/// picks the mode:
///
/// - 0 (and any other value): the rest is the file. A file that loads is written again, and that
///   loads to the same users (parse, write, parse).
/// - 1: the rest, split at 0x00 bytes, are user names (invalid UTF-8 repaired): those the name
///   rules accept are written with a valid hash, and the file must load back to exactly them (the
///   writer's quoting of keys).
/// - 2: the rest is a PHC string for `Argon2PHC.parse` alone.
///
/// The C++ parser is not instrumented (only Swift is built with `-sanitize=fuzzer,address`): its
/// coverage does not guide the fuzzer, what the Swift side does with its results does.
let usersTOMLHarness = Harness(
    name: "users-toml", summary: "users.toml reader and writer (parse, write, parse) and Argon2 PHC strings",
    run: fuzzUsersTOML, seeds: usersTOMLSeeds,
    // TOMLKit 0.6.0 never frees a parsed document, nor the strdup'ed copy `.string` returns, nor
    // its error record: a few KB per read of the file (once at start-up in foxmq). LeakSanitizer
    // would stop at the first, and a leak check after every input costs milliseconds.
    findsLeaks: false)

let validPHC = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

@Sendable func fuzzUsersTOML(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let mode = input.byte()
    let rest = input.rest()
    switch mode {
    case 1:
        var users: [String: String] = [:]
        for piece in rest.split(separator: 0, omittingEmptySubsequences: false) {
            let name = String(decoding: piece, as: UTF8.self)
            if UserName.isValid(name) { users[name] = validPHC }
        }
        let file = UsersFile(users: users)
        let text = file.serialized()
        guard let loaded = try? UsersFile.parse(text, path: "users.toml") else {
            fatalError("users-toml: the file written for \(users.keys.sorted()) does not load:\n\(text)")
        }
        require(loaded == file, "users-toml: \(file.users) was written and loaded as \(loaded.users):\n\(text)")
    case 2:
        guard let text = String(validating: rest, as: UTF8.self) else { return }
        if case .success(let phc) = Argon2PHC.parse(text) {
            require(phc.saltLength >= 8 && phc.hashLength >= 4, "users-toml: \(text) parsed to \(phc)")
        }
    default:
        guard let text = String(validating: rest, as: UTF8.self),
            let file = try? UsersFile.parse(text, path: "users.toml")
        else { return }
        for (name, phc) in file.users {
            require(UserName.isValid(name), "users-toml: loaded the invalid user name \(name.debugDescription)")
            guard case .success = Argon2PHC.parse(phc) else {
                fatalError("users-toml: loaded the invalid hash \(phc.debugDescription)")
            }
        }
        let written = file.serialized()
        guard let again = try? UsersFile.parse(written, path: "users.toml") else {
            fatalError("users-toml: the file written for \(file.users) does not load:\n\(written)")
        }
        require(again == file, "users-toml: \(file.users) was written and loaded as \(again.users)")
        require(again.serialized() == written, "users-toml: writing is not stable for \(file.users)")
    }
}

@Sendable func usersTOMLSeeds() -> [Seed] {
    let files: [(String, String)] = [
        ("empty", ""),
        ("users-table-empty", "[users]\n"),
        ("one-user", "[users.alice]\npassword-hash = \"\(validPHC)\"\n"),
        (
            "quoted-names",
            "[users.\"bob smith\"]\npassword-hash = \"\(validPHC)\"\n\n[users.\"quote\\\"d\"]\npassword-hash = '\(validPHC)'\n"
        ),
        (
            "inline-and-extra-keys",
            "title = \"x\"\nusers = { carol = { password-hash = \"\(validPHC)\", note = 1 } }\n"
        ),
        (
            "argon2i-v16",
            "[users.dave]\npassword-hash = \"$argon2i$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaA\"\n"
        ),
        ("unicode-name", "[users.\"żółw🦊\"]\npassword-hash = \"\(validPHC)\"\n"),
    ]
    var seeds = files.map { Seed($0.0, [0] + Array($0.1.utf8)) }
    seeds.append(Seed("writer-names", [1] + Array("alice\0bob smith\0a\"b\\c\0żółw\0[x]\0=".utf8)))
    seeds.append(Seed("phc", [2] + Array(validPHC.utf8)))
    seeds.append(Seed("phc-argon2d", [2] + Array("$argon2d$v=16$m=64,t=1,p=8$YWFhYWFhYWE$YmJiYg".utf8)))
    return seeds
}
