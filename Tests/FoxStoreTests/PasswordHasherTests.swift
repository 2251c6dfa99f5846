import FoxStore
import Testing

@Suite struct PasswordHasherTests {
    /// Made independently with argon2-cffi 25.1.0:
    /// `argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16).hash("secret")`
    static let cffiSecret =
        "$argon2id$v=19$m=19456,t=2,p=1$2h3QEDEt9PxGCLkBXO0S/Q$U/uU0kHze7RWgrskZ0SKNpyVCmfkQf3hN4DBz2VYV9c"

    /// argon2-cffi `low_level.hash_secret(b"secret", b"0123456789abcdef", time_cost=2,
    /// memory_cost=19456, parallelism=1, hash_len=32, type=Type.ID)`.
    static let cffiSecretFixedSalt =
        "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$8qPpaWig0H31wvibKAgpght2Ry2M8rtRQYtZ93ooMus"

    @Test func hashThenVerify() throws {
        let phc = try PasswordHasher.hash(password: "correct horse battery staple")
        #expect(phc.hasPrefix("$argon2id$v=19$m=19456,t=2,p=1$"))
        let parsed = try Argon2PHC.parse(phc).get()
        #expect(parsed.variant == .argon2id)
        #expect(parsed.saltLength == 16)
        #expect(parsed.hashLength == 32)
        #expect(PasswordHasher.verify(password: "correct horse battery staple", phc: phc))
        #expect(!PasswordHasher.verify(password: "correct horse battery stapl", phc: phc))
        #expect(!PasswordHasher.verify(password: "", phc: phc))
    }

    @Test func saltsAreRandom() throws {
        let a = try PasswordHasher.hash(password: "same")
        let b = try PasswordHasher.hash(password: "same")
        #expect(a != b)
        #expect(PasswordHasher.verify(password: "same", phc: a))
        #expect(PasswordHasher.verify(password: "same", phc: b))
    }

    @Test func verifiesKnownArgon2CffiVector() {
        #expect(PasswordHasher.verify(password: "secret", phc: Self.cffiSecret))
        #expect(!PasswordHasher.verify(password: "Secret", phc: Self.cffiSecret))
        #expect(PasswordHasher.verify(password: Array("secret".utf8), phc: Self.cffiSecret))
    }

    @Test func fixedSaltReproducesArgon2CffiByteForByte() throws {
        let phc = try PasswordHasher.hash(password: "secret", salt: Array("0123456789abcdef".utf8))
        #expect(phc == Self.cffiSecretFixedSalt)
    }

    @Test(arguments: [
        // argon2-cffi, Type.I, t=3, m=4096, p=2, salt "somesaltsomesalt"
        "$argon2i$v=19$m=4096,t=3,p=2$c29tZXNhbHRzb21lc2FsdA$mYIO4o1rz9pgnq7vI1g0U3MQ4r8pnqZfGhcQ2HWhCGo",
        // argon2-cffi, Type.D, t=1, m=8192, p=1, 24-byte hash
        "$argon2d$v=19$m=8192,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$R7y9ujZjSAappG/kAlbSiO9DLzUPhA9Z",
    ])
    func verifiesOtherVariantsAndParameters(phc: String) {
        #expect(PasswordHasher.verify(password: "password", phc: phc))
        #expect(!PasswordHasher.verify(password: "passwort", phc: phc))
    }

    @Test(arguments: [
        "",
        "secret",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$argon2id$v=19$m=19456,t=2,p=1$2h3QEDEt9PxGCLkBXO0S/Q",
        "$argon2id$v=19$m=19456,t=2,p=1$2h3QEDEt9PxGCLkBXO0S/Q$U/uU0kHze7RWgrskZ0SKNpyVCmfkQf3hN4DBz2VYV9c=",
        "$argon2id$v=19$m=19456,t=2,p=1$2h3QEDEt9PxGCLkBXO0S/Q$U/uU0kHze7RWgrskZ0SKNpyVCmfkQf3hN4DBz2VYV9c\u{0}x",
        // Right hash, wrong variant label.
        "$argon2i$v=19$m=19456,t=2,p=1$2h3QEDEt9PxGCLkBXO0S/Q$U/uU0kHze7RWgrskZ0SKNpyVCmfkQf3hN4DBz2VYV9c",
        // Right hash, different parameters.
        "$argon2id$v=19$m=19456,t=3,p=1$2h3QEDEt9PxGCLkBXO0S/Q$U/uU0kHze7RWgrskZ0SKNpyVCmfkQf3hN4DBz2VYV9c",
    ])
    func malformedOrMismatchedHashesDoNotVerify(phc: String) {
        #expect(!PasswordHasher.verify(password: "secret", phc: phc))
    }

    @Test func binaryAndEmptyPasswords() throws {
        let binary: [UInt8] = [0x00, 0xFF, 0xC3, 0x28, 0x80]
        let phc = try PasswordHasher.hash(password: binary)
        #expect(PasswordHasher.verify(password: binary, phc: phc))
        #expect(!PasswordHasher.verify(password: Array(binary.dropLast()), phc: phc))

        let empty = try PasswordHasher.hash(password: [UInt8]())
        #expect(PasswordHasher.verify(password: [UInt8](), phc: empty))
        #expect(!PasswordHasher.verify(password: [0], phc: empty))
    }

    @Test func shortSaltIsRefused() {
        #expect(throws: PasswordHashError.self) {
            try PasswordHasher.hash(password: "secret", salt: [1, 2, 3])
        }
    }
}
