import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failed system call on a file: `errno` and a message naming the operation and the path.
public struct FileError: Error, CustomStringConvertible {
    public let errno: Int32
    public let message: String

    public var description: String { message }

    public init(_ operation: String, _ path: String, errno: Int32) {
        self.errno = errno
        self.message = "\(operation) \(path): \(String(cString: strerror(errno)))"
    }

    public init(_ operation: String, _ path: String, _ error: any Error) {
        self.init(operation, path, errno: (error as? Errno)?.rawValue ?? EIO)
    }

    public var alreadyExists: Bool { errno == EEXIST }
}

/// Small blocking POSIX helpers for the small files of a node (users.toml, the address book,
/// node keys, store directories): read whole, written atomically and durably.
public enum Files {
    /// The largest file read by default: none of ours is near it (an address book of 1000
    /// entries is about 300 KB); anything far larger is not one of ours.
    public static let readBytesMax = 64 * 1024 * 1024

    /// The whole content of `path`, or nil if it does not exist.
    public static func readIfExists(_ path: String, maxBytes: Int = readBytesMax) throws(FileError) -> [UInt8]? {
        let file: FileDescriptor
        do {
            file = try FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec)
        } catch Errno.noSuchFileOrDirectory {
            return nil
        } catch {
            throw FileError("open", path, error)
        }
        defer { try? file.close() }
        var content: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count: Int
            do {
                count = try chunk.withUnsafeMutableBytes { try file.read(into: $0) }
            } catch {
                throw FileError("read", path, error)
            }
            if count == 0 { return content }
            content.append(contentsOf: chunk[0..<count])
            if content.count > maxBytes { throw FileError("read", path, errno: EFBIG) }
        }
    }

    /// Whether something (a file, a directory, a dangling link) exists at `path`.
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Writes `content` to `path` with exactly `mode`: a temporary file in the same directory,
    /// fsynced, then renamed over `path` (`replace`) or hard-linked to it, which fails with
    /// EEXIST when `path` exists, so a file that appeared since the caller looked is never
    /// overwritten. Readers see the old file or the new one, never a partial one.
    public static func writeFile(_ content: [UInt8], to path: String, mode: UInt32, replace: Bool) throws(FileError) {
        var random = SystemRandomNumberGenerator()
        let tempPath = "\(path).tmp-\(getpid())-\(String(random.next() as UInt32, radix: 16))"
        let file: FileDescriptor
        do {
            file = try FileDescriptor.open(
                FilePath(tempPath), .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                permissions: FilePermissions(rawValue: mode_t(mode)))
        } catch {
            throw FileError("create", tempPath, error)
        }
        var closed = false
        defer {
            if !closed { try? file.close() }
            unlink(tempPath)
        }
        // open() applies the umask; a secret key must be 0600 whatever the umask.
        _ = fchmod(file.rawValue, mode_t(mode))
        do {
            _ = try file.writeAll(content)
        } catch {
            throw FileError("write", tempPath, error)
        }
        // swift-system has no fsync.
        if fsync(file.rawValue) != 0 { throw FileError("fsync", tempPath, errno: errno) }
        closed = true
        do {
            try file.close()
        } catch {
            throw FileError("close", tempPath, error)
        }
        if replace {
            if rename(tempPath, path) != 0 { throw FileError("rename \(tempPath) to", path, errno: errno) }
        } else if link(tempPath, path) != 0 {
            let e = errno
            // A file system without hard links: check, then rename (a file created in between
            // would be replaced; nothing better is possible there).
            guard e == EPERM || e == EOPNOTSUPP || e == ENOSYS else { throw FileError("create", path, errno: e) }
            if exists(path) { throw FileError("create", path, errno: EEXIST) }
            if rename(tempPath, path) != 0 { throw FileError("rename \(tempPath) to", path, errno: errno) }
        }

        // Make the new name durable; best effort (some file systems refuse).
        syncDirectory(directoryName(of: path))
    }

    /// `fsync` of a directory, so that renames and creations in it are durable. Best effort:
    /// some file systems refuse it.
    public static func syncDirectory(_ path: String) {
        guard
            let directory = try? FileDescriptor.open(
                FilePath(path), .readOnly, options: [.directory, .closeOnExec])
        else { return }
        _ = fsync(directory.rawValue)  // swift-system has no fsync
        try? directory.close()
    }

    /// `mkdir -p path`; new directories get `mode` (less the umask).
    public static func makeDirectories(_ path: String, mode: UInt32) throws(FileError) {
        var info = stat()
        if stat(path, &info) == 0 {
            if info.st_mode & S_IFMT == S_IFDIR { return }
            throw FileError("mkdir", path, errno: ENOTDIR)
        }
        let parent = directoryName(of: path)
        if parent != path && parent != "." && parent != "/" {
            try makeDirectories(parent, mode: mode)
        }
        if mkdir(path, mode_t(mode)) != 0 {
            let e = errno
            if e == EEXIST { return }
            throw FileError("mkdir", path, errno: e)
        }
    }

    /// The directory part of `path` ("." for a bare file name).
    public static func directoryName(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        var directory = trimmed[..<slash]
        while directory.count > 1 && directory.hasSuffix("/") { directory = directory.dropLast() }
        return directory.isEmpty ? "/" : String(directory)
    }

    /// `directory/name`.
    public static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// Replaces `path` with `content` atomically (see `writeFile`); the new file keeps the
    /// permission bits of the file it replaces, and a new file gets `newFileMode`.
    public static func writeAtomically(_ content: [UInt8], to path: String, newFileMode: UInt32) throws(FileError) {
        var mode = newFileMode
        var info = stat()
        if stat(path, &info) == 0 { mode = UInt32(info.st_mode & 0o7777) }
        try writeFile(content, to: path, mode: mode, replace: true)
    }
}
