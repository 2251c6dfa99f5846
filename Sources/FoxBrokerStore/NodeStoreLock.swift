import FoxStore
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// One writer per data directory: an exclusive, non-blocking `flock` on `DATA/node.lock`, held by
/// a writable `NodeStore` for its whole life (released by `release()`, `NodeStore.close()` or when
/// the value goes away; the kernel releases it when the process dies, even by `kill -9`).
///
/// LMDB itself lets two processes open the same environment for writing (they take turns at the
/// writer mutex), and two nodes appending to one log would interleave their records. The lock
/// makes the second `foxmq run` (or `snapshot restore`) on a directory fail at once with the pid
/// of the holder, which is written into the file after the lock is taken. Read-only opens
/// (`foxdump`, `snapshot create`) do not take it.
///
/// `flock` locks belong to the open file description, so a second lock from the same process
/// (another `open`) is refused too. The file is never deleted: deleting a lock file races with
/// a process that has just opened it.
public final class NodeStoreLock: Sendable {
    public static let fileName = "node.lock"

    /// The data directory, as given.
    public let directory: String
    /// `directory/node.lock`.
    public let path: String
    private let file: Mutex<FileDescriptor?>

    /// Takes the lock, creating `directory` (unless `creatingDirectory` is false) and the lock
    /// file (mode 0600) if needed.
    ///
    /// - Throws: `NodeStoreError.inUse` naming the directory and the holder's pid when another
    ///   process (or another open in this one) holds it; `.store(.io)` when the directory or the
    ///   file cannot be created or opened.
    public init(directory: String, creatingDirectory: Bool = true) throws(NodeStoreError) {
        self.directory = directory
        path = Self.path(inDirectory: directory)
        if creatingDirectory {
            try Self.makeDirectories(directory)
        }
        let file: FileDescriptor
        do {
            file = try FileDescriptor.open(
                FilePath(path), .readWrite, options: [.create, .closeOnExec], permissions: [.ownerReadWrite])
        } catch {
            let code = (error as? Errno)?.rawValue ?? EIO
            throw .store(.io(operation: "open", path: path, code: code, message: String(cString: strerror(code))))
        }
        // swift-system has no flock.
        while flock(file.rawValue, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            let holder = Self.readPid(file)
            try? file.close()
            if code == EWOULDBLOCK {
                throw .inUse(file: directory, detail: Self.holderText(holder))
            }
            throw .store(.io(operation: "flock", path: path, code: code, message: String(cString: strerror(code))))
        }
        // Best effort: the pid only serves the message of the process that finds the lock taken.
        if (try? file.resize(to: 0)) != nil {
            _ = try? file.writeAll(toAbsoluteOffset: 0, Array("\(getpid())\n".utf8))
        }
        self.file = Mutex(file)
    }

    deinit {
        release()
    }

    /// Releases the lock (idempotent). The pid stays in the file; it means nothing without the
    /// lock.
    public func release() {
        file.withLock { file in
            guard let open = file else { return }
            _ = flock(open.rawValue, LOCK_UN)
            try? open.close()
            file = nil
        }
    }

    /// `directory/node.lock`.
    public static func path(inDirectory directory: String) -> String {
        directory.hasSuffix("/") ? directory + fileName : directory + "/" + fileName
    }

    /// "in use by another foxmq process (pid N)", or by this one.
    static func holderText(_ holder: Int32?) -> String {
        guard let holder else { return "in use by another foxmq process (pid unknown)" }
        if holder == getpid() { return "already open for writing in this process (pid \(holder))" }
        return "in use by another foxmq process (pid \(holder))"
    }

    /// The pid written in the lock file, if it holds one.
    private static func readPid(_ file: FileDescriptor) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = (try? buffer.withUnsafeMutableBytes { try file.read(fromAbsoluteOffset: 0, into: $0) }) ?? 0
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        return Int32(text.trimmingSpaces)
    }

    /// `mkdir -p`; new directories get 0777 less the umask, as LMDB's environment creates them.
    private static func makeDirectories(_ path: String) throws(NodeStoreError) {
        var status = stat()
        if stat(path, &status) == 0 {
            if status.st_mode & S_IFMT == S_IFDIR { return }
            throw .store(
                .io(
                    operation: "create directory", path: path, code: ENOTDIR,
                    message: String(cString: strerror(ENOTDIR))))
        }
        var parent = Substring(path)
        while parent.count > 1 && parent.hasSuffix("/") { parent = parent.dropLast() }
        if let slash = parent.lastIndex(of: "/") {
            let parentPath = String(parent[..<slash])
            if !parentPath.isEmpty { try makeDirectories(parentPath) }
        }
        if mkdir(path, 0o777) != 0 && errno != EEXIST {
            let code = errno
            throw .store(
                .io(operation: "create directory", path: path, code: code, message: String(cString: strerror(code))))
        }
    }
}

extension String {
    /// Without leading and trailing spaces, tabs and newlines.
    fileprivate var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[start...end])
    }
}
