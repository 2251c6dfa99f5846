import Crypto
import FoxFiles
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// The archive's bytes (see `NodeSnapshot` for the format) and the small POSIX helpers of
// snapshot create and restore. Files are streamed in chunks: a store may be far larger than
// memory.

/// Blocking POSIX helpers; every failure is a `SnapshotError.io` naming the path.
enum SnapshotIO {
    static let chunkBytes = 1 << 20

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    static func failure(_ operation: String, _ path: String) -> SnapshotError {
        .io(operation: operation, path: path, code: errno)
    }

    /// A random suffix for temporary names: pid and 32 random bits.
    static func temporarySuffix() -> String {
        var generator = SystemRandomNumberGenerator()
        return "\(getpid())-\(String(generator.next() as UInt32, radix: 16))"
    }

    static func exists(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFDIR
    }

    static func fileSize(_ path: String) throws(SnapshotError) -> UInt64 {
        var status = stat()
        guard stat(path, &status) == 0 else { throw failure("stat", path) }
        return UInt64(status.st_size)
    }

    /// The names in `directory`, without `.` and `..`.
    static func entries(of directory: String) throws(SnapshotError) -> [String] {
        guard let handle = opendir(directory) else { throw failure("open directory", directory) }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Removes `path`: a file, or a directory with the files in it (one level: what snapshot
    /// staging directories hold). Best effort, for cleanup.
    static func removeTree(_ path: String) {
        if isDirectory(path), let names = try? entries(of: path) {
            for name in names { removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// `mkdir -p`, new directories 0700 (a node's directories hold its data and secrets).
    static func makeDirectories(_ path: String) throws(SnapshotError) {
        if isDirectory(path) { return }
        let parent = directoryName(of: path)
        if parent != path && parent != "." && parent != "/" { try makeDirectories(parent) }
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw failure("create directory", path) }
    }

    /// The directory part of `path` ("." for a bare name).
    static func directoryName(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }

    /// The last component of `path`.
    static func baseName(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return String(trimmed) }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    static func syncDirectory(_ path: String) {
        Files.syncDirectory(path)
    }

    static func rename(_ from: String, _ to: String) throws(SnapshotError) {
        if Glibc.rename(from, to) != 0 { throw failure("rename to \(to)", from) }
    }

    /// Moves a file; across file systems (`EXDEV`) by copy, fsync and unlink.
    static func move(_ from: String, _ to: String) throws(SnapshotError) {
        if Glibc.rename(from, to) == 0 { return }
        guard errno == EXDEV else { throw failure("rename to \(to)", from) }
        let source = try OpenFile(reading: from)
        let destination = try OpenFile(creating: to)
        var buffer = [UInt8](repeating: 0, count: chunkBytes)
        while true {
            let count = try source.read(into: &buffer, upTo: buffer.count)
            if count == 0 { break }
            try destination.write(buffer[0..<count])
        }
        try destination.sync()
        try destination.close()
        unlink(from)
    }

    /// The SHA-256 (hex) and size of a file, read in chunks.
    static func digest(of path: String) throws(SnapshotError) -> (size: UInt64, sha256: String) {
        let file = try OpenFile(reading: path)
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: chunkBytes)
        var size: UInt64 = 0
        while true {
            let count = try file.read(into: &buffer, upTo: buffer.count)
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            size += UInt64(count)
        }
        return (size, hex(hasher.finalize()))
    }

    /// UTC as ISO 8601 with milliseconds, and as a compact stamp for file names
    /// (`20261206T153012Z`), from milliseconds since the epoch.
    static func utc(millis: UInt64) -> (iso: String, stamp: String) {
        var seconds = time_t(millis / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let milliseconds = millis % 1000
        let fraction =
            milliseconds < 10 ? "00\(milliseconds)" : milliseconds < 100 ? "0\(milliseconds)" : "\(milliseconds)"
        let date = "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))"
        let clock = "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
        let stamp =
            "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
        return ("\(date)T\(clock).\(fraction)Z", stamp)
    }

    static func nowMillis() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(spec.tv_sec) * 1000 + UInt64(spec.tv_nsec) / 1_000_000
    }

    static func monotonicMillis() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1000 + UInt64(spec.tv_nsec) / 1_000_000
    }
}

/// An open file (swift-system's `FileDescriptor`) with whole reads and writes; closed on
/// deinit.
final class OpenFile {
    let path: String
    private var file: FileDescriptor?

    init(reading path: String) throws(SnapshotError) {
        self.path = path
        do {
            file = try FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec)
        } catch {
            throw Self.failure("open", path, error)
        }
    }

    /// Creates `path` (mode 0600); an existing file is refused (`O_EXCL`).
    init(creating path: String) throws(SnapshotError) {
        self.path = path
        do {
            file = try FileDescriptor.open(
                FilePath(path), .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                permissions: [.ownerReadWrite])
        } catch {
            throw Self.failure("create", path, error)
        }
    }

    deinit { try? file?.close() }

    private var open: FileDescriptor {
        guard let file else { preconditionFailure("use of the closed file \(path)") }
        return file
    }

    /// Reads up to `count` bytes into the start of `buffer`; 0 at the end of the file.
    func read(into buffer: inout [UInt8], upTo count: Int) throws(SnapshotError) -> Int {
        precondition(count <= buffer.count)
        let file = open
        do {
            return try buffer.withUnsafeMutableBytes {
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<count]))
            }
        } catch {
            throw Self.failure("read", path, error)
        }
    }

    func write(_ bytes: some Sequence<UInt8>) throws(SnapshotError) {
        do {
            _ = try open.writeAll(bytes)
        } catch {
            throw Self.failure("write", path, error)
        }
    }

    func sync() throws(SnapshotError) {
        // swift-system has no fsync.
        if fsync(open.rawValue) != 0 { throw SnapshotIO.failure("fsync", path) }
    }

    func close() throws(SnapshotError) {
        let file = open
        self.file = nil
        do {
            try file.close()
        } catch {
            throw Self.failure("close", path, error)
        }
    }

    private static func failure(_ operation: String, _ path: String, _ error: any Error) -> SnapshotError {
        .io(operation: operation, path: path, code: (error as? Errno)?.rawValue ?? EIO)
    }
}

// MARK: - Writing

/// Writes an archive: header, manifest, then each file as it is read from disk.
struct SnapshotArchiveWriter {
    let output: OpenFile
    private(set) var sizeBytes: UInt64 = 0

    init(output: OpenFile) {
        self.output = output
    }

    mutating func writeHeader(manifest: [UInt8]) throws(SnapshotError) {
        var header = NodeSnapshot.magic
        header += bigEndian(NodeSnapshot.formatVersion)
        header += bigEndian(UInt32(manifest.count))
        header += manifest
        header += Array(SHA256.hash(data: manifest))
        try output.write(header)
        sizeBytes += UInt64(header.count)
    }

    /// Appends the file at `path`, which must still be `size` bytes long and hash to `sha256`
    /// (re-hashed on the way: the archive holds exactly what the manifest describes).
    mutating func appendFile(path: String, name: String, size: UInt64, sha256: String) throws(SnapshotError) {
        try output.write(bigEndian(size))
        sizeBytes += 8
        let input = try OpenFile(reading: path)
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: SnapshotIO.chunkBytes)
        var copied: UInt64 = 0
        while true {
            let count = try input.read(into: &buffer, upTo: buffer.count)
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            try output.write(buffer[0..<count])
            copied += UInt64(count)
        }
        sizeBytes += copied
        let computed = SnapshotIO.hex(hasher.finalize())
        guard copied == size, computed == sha256 else {
            throw .invalid(file: path, detail: "\(name) changed while the snapshot was written")
        }
    }
}

func bigEndian<Value: FixedWidthInteger>(_ value: Value) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
}

// MARK: - Reading

/// Reads an archive front to back, counting bytes, so that every error can say where.
struct SnapshotArchiveReader {
    let file: String
    private let input: OpenFile
    /// Bytes consumed so far.
    private(set) var offset: UInt64 = 0
    private var buffer = [UInt8](repeating: 0, count: SnapshotIO.chunkBytes)

    init(file: String) throws(SnapshotError) {
        self.file = file
        input = try OpenFile(reading: file)
    }

    /// Exactly `count` bytes of `within`, or `.truncated`.
    mutating func read(_ count: Int, within: String) throws(SnapshotError) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(count)
        while result.count < count {
            let got = try input.read(into: &buffer, upTo: min(buffer.count, count - result.count))
            if got == 0 { throw .truncated(file: file, atByte: offset, within: within) }
            result += buffer[0..<got]
            offset += UInt64(got)
        }
        return result
    }

    mutating func integer<Value: FixedWidthInteger>(_: Value.Type, within: String) throws(SnapshotError) -> Value {
        let bytes = try read(MemoryLayout<Value>.size, within: within)
        return bytes.reduce(Value(0)) { $0 << 8 | Value($1) }
    }

    /// Copies `size` bytes into a new file at `path` (fsynced), and returns their SHA-256.
    mutating func extract(size: UInt64, to path: String, within: String) throws(SnapshotError) -> String {
        let output = try OpenFile(creating: path)
        var hasher = SHA256()
        var remaining = size
        while remaining > 0 {
            let want = Int(min(UInt64(buffer.count), remaining))
            let got = try input.read(into: &buffer, upTo: want)
            if got == 0 { throw .truncated(file: file, atByte: offset, within: within) }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<got])) }
            try output.write(buffer[0..<got])
            offset += UInt64(got)
            remaining -= UInt64(got)
        }
        try output.sync()
        try output.close()
        return SnapshotIO.hex(hasher.finalize())
    }

    /// Throws unless the archive ends here.
    mutating func expectEnd() throws(SnapshotError) {
        var trailing = 0
        while true {
            let got = try input.read(into: &buffer, upTo: buffer.count)
            if got == 0 { break }
            trailing += got
        }
        if trailing > 0 {
            throw .invalid(
                file: file,
                detail:
                    "\(trailing) unexpected byte(s) after the last file (at byte \(offset)); the snapshot is damaged")
        }
    }

    /// Reads and checks the header and the manifest: magic, format version, manifest checksum,
    /// the manifest's own versions and file list.
    mutating func readManifest() throws(SnapshotError) -> SnapshotManifest {
        let magic = try read(NodeSnapshot.magic.count, within: "the header")
        guard magic == NodeSnapshot.magic else {
            throw .invalid(file: file, detail: "not a foxmq snapshot (it does not start with FOXSNAP)")
        }
        let version = try integer(UInt32.self, within: "the header")
        guard version <= NodeSnapshot.formatVersion else {
            throw .formatTooNew(
                file: file, what: "snapshot format", found: UInt64(version),
                supported: UInt64(NodeSnapshot.formatVersion))
        }
        guard version == NodeSnapshot.formatVersion else {
            throw .invalid(file: file, detail: "unknown snapshot format \(version)")
        }
        let length = try integer(UInt32.self, within: "the header")
        guard length > 0, length <= NodeSnapshot.manifestSizeMaxBytes else {
            throw .invalid(file: file, detail: "manifest length \(length) is not plausible; the snapshot is damaged")
        }
        let bytes = try read(Int(length), within: "the manifest")
        let stored = try read(32, within: "the manifest checksum")
        let computed = Array(SHA256.hash(data: bytes))
        guard stored == computed else {
            throw .checksumMismatch(
                file: file, entry: "the manifest", expected: SnapshotIO.hex(stored), computed: SnapshotIO.hex(computed))
        }
        let manifest: SnapshotManifest
        do {
            manifest = try SnapshotManifest.decode(bytes)
        } catch {
            throw .invalid(file: file, detail: "the manifest does not decode: \(error)")
        }
        try check(manifest, headerVersion: version)
        return manifest
    }

    private func check(_ manifest: SnapshotManifest, headerVersion: UInt32) throws(SnapshotError) {
        guard manifest.snapshotFormat == headerVersion else {
            throw .invalid(
                file: file,
                detail: "the manifest says snapshot format \(manifest.snapshotFormat), the header \(headerVersion)")
        }
        guard manifest.storeFormat <= NodeStore.formatVersion else {
            throw .formatTooNew(
                file: file, what: "store format", found: UInt64(manifest.storeFormat),
                supported: UInt64(NodeStore.formatVersion))
        }
        guard manifest.storeFormat == NodeStore.formatVersion else {
            throw .invalid(file: file, detail: "unknown store format \(manifest.storeFormat)")
        }
        var seen: Set<String> = []
        for entry in manifest.files {
            guard entry.name == NodeSnapshot.dataFileName || entry.name == NodeSnapshot.adminFileName else {
                throw .invalid(file: file, detail: "the manifest lists an unknown file \(entry.name.debugDescription)")
            }
            guard seen.insert(entry.name).inserted else {
                throw .invalid(file: file, detail: "the manifest lists \(entry.name) twice")
            }
            guard entry.sha256.count == 64, entry.sha256.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                throw .invalid(file: file, detail: "the manifest's SHA-256 of \(entry.name) is not 64 hex digits")
            }
        }
        guard seen.contains(NodeSnapshot.dataFileName) else {
            throw .invalid(file: file, detail: "the manifest lists no \(NodeSnapshot.dataFileName)")
        }
        if let first = manifest.firstLogIndex, let last = manifest.lastLogIndex, first > last {
            throw .invalid(file: file, detail: "the manifest's log range \(first)...\(last) is empty")
        }
        if (manifest.firstLogIndex == nil) != (manifest.lastLogIndex == nil) {
            throw .invalid(file: file, detail: "the manifest gives only one end of the log range")
        }
    }
}
