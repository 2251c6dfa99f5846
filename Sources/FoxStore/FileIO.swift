#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failed system call: `errno` and a message naming the operation and path.
struct FileIOError: Error {
    let errno: Int32
    let message: String

    init(_ operation: String, _ path: String, errno: Int32) {
        self.errno = errno
        self.message = "\(operation) \(path): \(String(cString: strerror(errno)))"
    }
}

/// Small blocking POSIX file helpers for the store's files (which are small).
enum FileIO {
    /// The whole content of `path`, or nil if it does not exist.
    static func readIfExists(_ path: String) throws(FileIOError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            if e == ENOENT { return nil }
            throw FileIOError("open", path, errno: e)
        }
        defer { close(fd) }
        var content: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw FileIOError("read", path, errno: e)
            }
            if n == 0 { return content }
            content.append(contentsOf: chunk[0..<n])
        }
    }

    /// Replaces `path` with `content` atomically: writes a temporary file in the same
    /// directory, fsyncs it, renames it over `path` and fsyncs the directory. Readers
    /// see the old file or the new one, never a partial one.
    ///
    /// The new file keeps the permission bits of the file it replaces; a new file gets
    /// `newFileMode`.
    static func writeAtomically(_ content: [UInt8], to path: String, newFileMode: UInt32) throws(FileIOError) {
        var mode = mode_t(newFileMode)
        var st = stat()
        if stat(path, &st) == 0 {
            mode = st.st_mode & 0o7777
        }

        var rng = SystemRandomNumberGenerator()
        let tempPath = "\(path).tmp-\(getpid())-\(String(rng.next() as UInt32, radix: 16))"
        let fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        if fd < 0 { throw FileIOError("create", tempPath, errno: errno) }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(fd) }
            if !renamed { unlink(tempPath) }
        }
        // open() applies the umask; make the mode exact (e.g. keep an existing 0644).
        _ = fchmod(fd, mode)

        var written = 0
        while written < content.count {
            let n = content.withUnsafeBytes { buf in
                write(fd, buf.baseAddress! + written, buf.count - written)
            }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw FileIOError("write", tempPath, errno: e)
            }
            written += n
        }
        if fsync(fd) != 0 { throw FileIOError("fsync", tempPath, errno: errno) }
        closed = true
        if close(fd) != 0 { throw FileIOError("close", tempPath, errno: errno) }
        if rename(tempPath, path) != 0 { throw FileIOError("rename \(tempPath) to", path, errno: errno) }
        renamed = true

        // Make the rename itself durable; best effort (some file systems refuse).
        let dir = directoryName(of: path)
        let dirFD = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }

    /// `mkdir -p path` (new directories get 0777 less the umask).
    static func makeDirectories(_ path: String) throws(FileIOError) {
        var st = stat()
        if stat(path, &st) == 0 {
            if st.st_mode & S_IFMT == S_IFDIR { return }
            throw FileIOError("mkdir", path, errno: ENOTDIR)
        }
        let parent = directoryName(of: path)
        if parent != path && parent != "." && parent != "/" {
            try makeDirectories(parent)
        }
        if mkdir(path, 0o777) != 0 {
            let e = errno
            if e == EEXIST { return }
            throw FileIOError("mkdir", path, errno: e)
        }
    }

    /// The directory part of `path` ("." for a bare file name).
    static func directoryName(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        var dir = trimmed[..<slash]
        while dir.count > 1 && dir.hasSuffix("/") { dir = dir.dropLast() }
        return dir.isEmpty ? "/" : String(dir)
    }

    /// `directory/name`.
    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}
