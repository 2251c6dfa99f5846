/// Everything a running node needs from the admin database, read in one transaction: an
/// immutable value the node swaps in whole when `revision` moves (see
/// `AdminDatabase.snapshot(ifChangedSince:)`).
public struct AdminSnapshot: Sendable, Equatable {
    /// The database's revision when this was read.
    public let revision: Int64
    /// User name -> Argon2 PHC string.
    public let users: [String: String]
    /// The access rules, in id order.
    public let rules: AccessRules
    /// The settings, key -> value.
    public let settings: [String: String]

    public init(revision: Int64, users: [String: String], rules: AccessRules, settings: [String: String]) {
        self.revision = revision
        self.users = users
        self.rules = rules
        self.settings = settings
    }

    /// The users as the `UserDirectory` the authenticator verifies passwords against.
    public var userDirectory: UserDirectory {
        UserDirectory(UsersFile(users: users))
    }
}
