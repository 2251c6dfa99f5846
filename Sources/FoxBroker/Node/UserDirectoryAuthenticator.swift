import FoxStore

/// Authenticates against the users of `users.toml` (argon2id PHC strings, as the original).
public struct UserDirectoryAuthenticator: Authenticator {
    public let directory: UserDirectory

    public init(directory: UserDirectory) {
        self.directory = directory
    }

    public func authenticate(username: String?, password: [UInt8]?, allowAnonymous: Bool) -> Bool {
        guard let username else { return allowAnonymous }
        if allowAnonymous && !directory.contains(username: username) { return true }
        return directory.verify(username: username, password: password ?? [])
    }
}
