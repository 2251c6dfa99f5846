#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failed system call on one of the cluster's files: `errno` and a message naming the
/// operation and the path.
struct ClusterFileError: Error {
    let errno: Int32
    let message: String

    init(_ operation: String, _ path: String, errno: Int32) {
        self.errno = errno
        self.message = "\(operation) \(path): \(String(cString: strerror(errno)))"
    }

    var alreadyExists: Bool { errno == EEXIST }
}

/// Small blocking POSIX helpers for the address book and the node keys (small files, read
/// once at start-up or written once by `foxmq address-book`).
enum ClusterFiles {
    /// The largest file read: an address book of `AddressBook.memberCountMax` entries is about
    /// 300 KB; anything far larger is not one of ours.
    static let readBytesMax = 4 * 1024 * 1024

    /// The whole content of `path`, or nil if it does not exist.
    static func readIfExists(_ path: String) throws(ClusterFileError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            if e == ENOENT { return nil }
            throw ClusterFileError("open", path, errno: e)
        }
        defer { close(fd) }
        var content: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw ClusterFileError("read", path, errno: e)
            }
            if n == 0 { return content }
            content.append(contentsOf: chunk[0..<n])
            if content.count > readBytesMax { throw ClusterFileError("read", path, errno: EFBIG) }
        }
    }

    /// Whether something (a file, a directory, a dangling link) exists at `path`.
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Writes `content` to `path` with exactly `mode`: a temporary file in the same directory,
    /// fsynced, then renamed over `path` (`replace`) or hard-linked to it, which fails with
    /// EEXIST when `path` exists, so a file that appeared since the caller looked is never
    /// overwritten. Readers see the old file or the new one, never a partial one.
    static func writeFile(_ content: [UInt8], to path: String, mode: UInt32, replace: Bool) throws(ClusterFileError) {
        var random = SystemRandomNumberGenerator()
        let tempPath = "\(path).tmp-\(getpid())-\(String(random.next() as UInt32, radix: 16))"
        let fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
        if fd < 0 { throw ClusterFileError("create", tempPath, errno: errno) }
        var closed = false
        defer {
            if !closed { close(fd) }
            unlink(tempPath)
        }
        // open() applies the umask; a secret key must be 0600 whatever the umask.
        _ = fchmod(fd, mode_t(mode))

        var written = 0
        while written < content.count {
            let n = content.withUnsafeBytes { buffer in
                write(fd, buffer.baseAddress! + written, buffer.count - written)
            }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw ClusterFileError("write", tempPath, errno: e)
            }
            written += n
        }
        if fsync(fd) != 0 { throw ClusterFileError("fsync", tempPath, errno: errno) }
        closed = true
        if close(fd) != 0 { throw ClusterFileError("close", tempPath, errno: errno) }
        if replace {
            if rename(tempPath, path) != 0 { throw ClusterFileError("rename \(tempPath) to", path, errno: errno) }
        } else if link(tempPath, path) != 0 {
            let e = errno
            // A file system without hard links: check, then rename (a file created in between
            // would be replaced; nothing better is possible there).
            guard e == EPERM || e == EOPNOTSUPP || e == ENOSYS else { throw ClusterFileError("create", path, errno: e) }
            if exists(path) { throw ClusterFileError("create", path, errno: EEXIST) }
            if rename(tempPath, path) != 0 { throw ClusterFileError("rename \(tempPath) to", path, errno: errno) }
        }

        // Make the new name durable; best effort (some file systems refuse).
        let directoryFD = open(directoryName(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// `mkdir -p path`; new directories get `mode` (less the umask).
    static func makeDirectories(_ path: String, mode: UInt32) throws(ClusterFileError) {
        var info = stat()
        if stat(path, &info) == 0 {
            if info.st_mode & S_IFMT == S_IFDIR { return }
            throw ClusterFileError("mkdir", path, errno: ENOTDIR)
        }
        let parent = directoryName(of: path)
        if parent != path && parent != "." && parent != "/" {
            try makeDirectories(parent, mode: mode)
        }
        if mkdir(path, mode_t(mode)) != 0 {
            let e = errno
            if e == EEXIST { return }
            throw ClusterFileError("mkdir", path, errno: e)
        }
    }

    /// The directory part of `path` ("." for a bare file name).
    static func directoryName(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        var directory = trimmed[..<slash]
        while directory.count > 1 && directory.hasSuffix("/") { directory = directory.dropLast() }
        return directory.isEmpty ? "/" : String(directory)
    }

    /// `directory/name`.
    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}
