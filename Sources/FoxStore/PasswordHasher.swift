import CArgon2

/// Argon2 password hashing and verification through libargon2, compatible with the
/// `password-hash` strings of the original FoxMQ's `users.toml` (the Rust `argon2`
/// crate's defaults: argon2id, v=19, m=19456 KiB, t=2, p=1, 16-byte salt, 32-byte hash).
///
/// - Important: both calls are deliberately slow (tens of milliseconds of CPU and about
///   19 MiB of memory each with the default parameters) and block the calling thread.
///   Never call them on an event loop; run them on a thread pool (e.g. NIOThreadPool)
///   and hop back with the result.
///
/// Both are thread-safe: libargon2 keeps no global state.
public enum PasswordHasher {
    /// Memory cost in KiB (OWASP recommendation; the Rust `argon2` crate's default).
    public static let memoryKiB: UInt32 = 19456
    /// Number of passes.
    public static let iterations: UInt32 = 2
    /// Lanes.
    public static let parallelism: UInt32 = 1
    /// Salt length in bytes for newly generated salts.
    public static let saltLength = 16
    /// Raw hash length in bytes.
    public static let hashLength = 32

    /// Hashes `password` into an argon2id PHC string with the default parameters.
    ///
    /// - Parameter salt: the salt to use; nil (the normal case) draws `saltLength` random
    ///   bytes from `SystemRandomNumberGenerator`. A given salt must be at least 8 bytes.
    /// - Throws: `PasswordHashError` if libargon2 refuses the input (e.g. a short salt)
    ///   or cannot allocate its memory.
    public static func hash(password: [UInt8], salt: [UInt8]? = nil) throws(PasswordHashError) -> String {
        let salt = salt ?? randomSalt()
        let encodedLength = argon2_encodedlen(
            iterations, memoryKiB, parallelism, UInt32(clamping: salt.count), UInt32(hashLength), Argon2_id)
        var encoded = [CChar](repeating: 0, count: encodedLength)
        let status = password.withUnsafeBytes { pwd in
            salt.withUnsafeBytes { saltBytes in
                encoded.withUnsafeMutableBufferPointer { out in
                    argon2id_hash_encoded(
                        iterations, memoryKiB, parallelism,
                        pwd.baseAddress, pwd.count,
                        saltBytes.baseAddress, saltBytes.count,
                        hashLength, out.baseAddress, out.count)
                }
            }
        }
        guard status == ARGON2_OK.rawValue else {
            throw PasswordHashError(code: status)
        }
        return encoded.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Hashes the UTF-8 bytes of `password`; see `hash(password:salt:)`.
    public static func hash(password: String, salt: [UInt8]? = nil) throws(PasswordHashError) -> String {
        try hash(password: Array(password.utf8), salt: salt)
    }

    /// Whether `password` matches `phc`, an Argon2 PHC string.
    ///
    /// The variant (argon2id, argon2i or argon2d), version, m, t, p, salt and hash length
    /// are all taken from `phc`, so hashes made with other parameters still verify.
    /// The comparison is libargon2's constant-time one. A malformed `phc` gives false.
    public static func verify(password: [UInt8], phc: String) -> Bool {
        guard case .success(let parsed) = Argon2PHC.parse(phc) else { return false }
        let type: argon2_type
        switch parsed.variant {
        case .argon2d: type = Argon2_d
        case .argon2i: type = Argon2_i
        case .argon2id: type = Argon2_id
        }
        let status = phc.withCString { encoded in
            password.withUnsafeBytes { pwd in
                argon2_verify(encoded, pwd.baseAddress, pwd.count, type)
            }
        }
        return status == ARGON2_OK.rawValue
    }

    /// Verifies the UTF-8 bytes of `password`; see `verify(password:phc:)`.
    public static func verify(password: String, phc: String) -> Bool {
        verify(password: Array(password.utf8), phc: phc)
    }

    private static func randomSalt() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0..<saltLength).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
    }
}
