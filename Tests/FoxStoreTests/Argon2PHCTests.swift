import FoxStore
import Testing

@Suite struct Argon2PHCTests {
    @Test func parsesTheDefaultFormat() throws {
        let phc = try Argon2PHC.parse(PasswordHasherTests.cffiSecret).get()
        // Same parameters and lengths, different salt: equal as parameter sets.
        #expect(try Argon2PHC.parse(PasswordHasherTests.cffiSecretFixedSalt).get() == phc)
        #expect(phc.variant == .argon2id)
        #expect(phc.version == 19)
        #expect(phc.memoryKiB == 19456)
        #expect(phc.iterations == 2)
        #expect(phc.parallelism == 1)
        #expect(phc.saltLength == 16)
        #expect(phc.hashLength == 32)
    }

    @Test func versionFieldIsOptional() throws {
        let phc = try Argon2PHC.parse(
            "$argon2i$m=4096,t=3,p=1$c29tZXNhbHRzb21lc2FsdA$mYIO4o1rz9pgnq7vI1g0U3MQ4r8pnqZfGhcQ2HWhCGo"
        )
        .get()
        #expect(phc.version == 16)
        #expect(phc.variant == .argon2i)
    }

    @Test(arguments: [
        ("", "does not start with '$'"),
        ("$2b$12$abc", "not an argon2 hash"),
        ("$argon2x$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2g", "not an argon2 hash"),
        ("$argon2id$v=20$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2g", "unsupported version"),
        ("$argon2id$v=19$t=2,m=19456,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2g", "malformed parameters"),
        ("$argon2id$v=19$m=019456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2g", "malformed parameters"),
        ("$argon2id$v=19$m=19456,t=0,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2g", "t must be at least 1"),
        ("$argon2id$v=19$m=7,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2g", "m must be at least 8 * p"),
        ("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA", "missing salt or hash"),
        ("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaGhhc2g", "salt shorter than 8 bytes"),
        ("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA==$aGFzaGhhc2g", "salt is not unpadded base64"),
        ("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2g$x", "unexpected fields"),
        ("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGF", "hash shorter than 4 bytes"),
    ])
    func rejects(phc: String, reason: String) {
        switch Argon2PHC.parse(phc) {
        case .success(let parsed):
            Issue.record("accepted \(phc) as \(parsed)")
        case .failure(let error):
            #expect(error.reason.contains(reason), "\(error.reason)")
        }
    }
}
