#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The file checks of the admin database that `FileIO` does not have.
enum AdminFileSystem {
    /// Whether something exists at `path` (a dangling symbolic link counts as missing).
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    /// The `UsersFileError` of a users file that is not there.
    static func missingUsersFile(_ path: String) -> UsersFileError {
        UsersFileError(
            path: path, problem: .unreadable(errno: ENOENT, message: "open \(path): No such file or directory"))
    }
}
