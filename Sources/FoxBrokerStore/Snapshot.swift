import FoxBrokerCore
import FoxStore
import NIOCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Online snapshots of a node: `foxmq snapshot create` and `foxmq snapshot restore`
/// (durability.md §5 item 11).
///
/// A snapshot is one file holding a compacted copy of the node's LMDB store (`data.mdb`, taken
/// in one read transaction, so at one applied index) and, when the node has one, a copy of its
/// admin database (`admin.sqlite`, by SQLite's online backup API), with a manifest.
///
/// ## Archive format 1
///
/// All integers are big-endian.
///
/// | bytes | content |
/// |---|---|
/// | 8 | magic `FOXSNAP\0` |
/// | 4 | archive format version (u32), 1 |
/// | 4 | manifest length L (u32, at most 16 MiB) |
/// | L | manifest: UTF-8 JSON, see `SnapshotManifest` |
/// | 32 | SHA-256 of the L manifest bytes |
/// | per file, in manifest order: 8 | file length (u64), equal to the manifest's `size` |
/// | per file: length | the file's bytes, whose SHA-256 the manifest holds |
///
/// Nothing follows the last file. `head -c 4096 FILE | tail -c +17` shows the manifest.
/// The format version is read before anything else, so that a later format may change all
/// that follows it and still be refused by name.
public enum NodeSnapshot {
    /// The archive format this build writes and reads.
    public static let formatVersion: UInt32 = 1
    static let magic: [UInt8] = Array("FOXSNAP".utf8) + [0]
    static let manifestSizeMaxBytes = 16 << 20
    static let dataFileName = "data.mdb"
    static let adminFileName = AdminDatabase.fileName
}

/// The manifest of a snapshot archive (JSON, keys as below).
public struct SnapshotManifest: Codable, Sendable, Equatable {
    public struct File: Codable, Sendable, Equatable {
        /// `data.mdb` or `admin.sqlite`; nothing else is accepted.
        public var name: String
        public var size: UInt64
        /// SHA-256 of the content, 64 lowercase hexadecimal digits.
        public var sha256: String
    }

    /// The archive format (`NodeSnapshot.formatVersion`); equal to the header's.
    public var snapshotFormat: UInt32
    /// The layout of the store inside (`NodeStore.formatVersion`).
    public var storeFormat: UInt32
    /// The node the store belongs to (0 until clusters are wired).
    public var nodeID: UInt64
    /// When the copy was taken: UTC, ISO 8601, and milliseconds since the Unix epoch.
    public var createdAt: String
    public var createdAtMillis: UInt64
    /// The first and last log index in the store (nil when its log is empty).
    public var firstLogIndex: UInt64?
    public var lastLogIndex: UInt64?
    /// The applied index of the checkpoint inside (its rows reflect the log up to it); recovery
    /// replays the records after it, up to `lastLogIndex`.
    public var appliedIndex: UInt64
    /// The store's incarnation counter (nil before the first node start).
    public var incarnation: UInt32?
    /// The chain hash of the last log record (hex), the running hash of the log; nil when the
    /// log is empty.
    public var lastChain: String?
    public var files: [File]

    enum CodingKeys: String, CodingKey {
        case snapshotFormat, storeFormat
        case nodeID = "nodeId"
        case createdAt, createdAtMillis, firstLogIndex, lastLogIndex, appliedIndex, incarnation, lastChain, files
    }

    /// "1...250" or "empty".
    public var logRangeText: String {
        guard let firstLogIndex, let lastLogIndex else { return "empty" }
        return "\(firstLogIndex)...\(lastLogIndex)"
    }

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        // Encoding plain integers, strings and arrays cannot fail.
        return (try? Array(encoder.encode(self))) ?? []
    }

    static func decode(_ bytes: [UInt8]) throws -> SnapshotManifest {
        try JSONDecoder().decode(SnapshotManifest.self, from: Data(bytes))
    }
}

/// What `NodeSnapshot.create` did.
public struct SnapshotCreateReport: Sendable {
    public var file: String
    public var sizeBytes: UInt64
    public var manifest: SnapshotManifest
    public var elapsedMillis: UInt64
}

/// What `NodeSnapshot.restore` did.
public struct SnapshotRestoreReport: Sendable {
    public var file: String
    public var manifest: SnapshotManifest
    /// Where data.mdb now is, and admin.sqlite (nil when the snapshot has none).
    public var dataDirectory: String
    public var adminDatabase: String?
    /// What `--force` moved aside: (from, to).
    public var movedAside: [(from: String, to: String)]
    /// What the restored store recovers to (checked before anything was put in place).
    public var sessionCount: Int
    public var retainedCount: Int
    public var recoveredIndex: UInt64
    public var elapsedMillis: UInt64
}

/// Why a snapshot could not be made or restored. Each message starts with the file or
/// directory concerned and can be printed as is.
public enum SnapshotError: Error, CustomStringConvertible {
    /// The archive ends early: at byte `atByte`, inside `within`.
    case truncated(file: String, atByte: UInt64, within: String)
    /// A SHA-256 of the archive does not match its content (`entry`: a file or "the manifest").
    case checksumMismatch(file: String, entry: String, expected: String, computed: String)
    /// The archive or the store inside was written by a newer foxmq.
    case formatTooNew(file: String, what: String, found: UInt64, supported: UInt64)
    /// The archive is not a snapshot, or its parts disagree.
    case invalid(file: String, detail: String)
    /// The target of a create or restore is not acceptable (exists, in use, not empty).
    case refused(path: String, detail: String)
    case store(NodeStoreError)
    case admin(AdminDatabaseError)
    case io(operation: String, path: String, code: Int32)

    public var description: String {
        switch self {
        case .truncated(let file, let atByte, let within):
            return "\(file): truncated at byte \(atByte) (in \(within)); the snapshot is incomplete"
        case .checksumMismatch(let file, let entry, let expected, let computed):
            return
                "\(file): checksum mismatch for \(entry) (stored SHA-256 \(expected), computed \(computed)); the snapshot is damaged"
        case .formatTooNew(let file, let what, let found, let supported):
            return
                "\(file): \(what) \(found) was written by a newer foxmq (this one reads \(what) \(supported)); restore it with a newer foxmq"
        case .invalid(let file, let detail):
            return "\(file): \(detail)"
        case .refused(let path, let detail):
            return "\(path): \(detail)"
        case .store(let error):
            return "\(error)"
        case .admin(let error):
            return "\(error)"
        case .io(let operation, let path, let code):
            return "\(path): \(operation) failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}

// MARK: - The point a store is at

/// Where a store's log and checkpoint are: what the manifest records and restore checks.
struct SnapshotPoint: Equatable {
    var firstLogIndex: UInt64?
    var lastLogIndex: UInt64?
    var appliedIndex: UInt64
    var incarnation: UInt32?
    var lastChain: String?
}

extension NodeStore {
    /// The log range, checkpoint index, incarnation and last chain hash, in one read transaction.
    func snapshotPoint() throws(NodeStoreError) -> SnapshotPoint {
        do {
            return try environment.read { transaction in
                let first = try transaction.first(log).flatMap { LogRecord.index(ofKey: $0.key) }
                let last = try transaction.last(log)
                var lastChain: String?
                if let last {
                    do {
                        lastChain = SnapshotIO.hex(
                            try LogRecord.decode(
                                key: last.key, value: ByteBuffer(bytes: last.value), previousChain: nil
                            )
                            .chain)
                    } catch {
                        throw NodeStoreError.corrupt(
                            file: dataFile, table: "log",
                            keys: LogRecord.index(ofKey: last.key).map { "index \($0)" } ?? "the last key",
                            detail: "\(error)")
                    }
                }
                var appliedIndex: UInt64 = 0
                if let bytes = try transaction.get(meta, key: MetaKey.state) {
                    do {
                        appliedIndex = try StateMeta.decode(ByteBuffer(bytes: bytes)).appliedIndex
                    } catch {
                        throw NodeStoreError.corrupt(file: dataFile, table: "meta", keys: "state", detail: "\(error)")
                    }
                }
                let incarnation = try transaction.get(meta, key: MetaKey.incarnation).flatMap {
                    Self.integer($0, as: UInt32.self)
                }
                return SnapshotPoint(
                    firstLogIndex: first, lastLogIndex: last.flatMap { LogRecord.index(ofKey: $0.key) },
                    appliedIndex: appliedIndex, incarnation: incarnation, lastChain: lastChain)
            }
        } catch let error as NodeStoreError {
            throw error
        } catch let error as StoreError {
            throw .store(error)
        } catch {
            throw .store(.io(operation: "read", path: dataFile, code: 0, message: "\(error)"))
        }
    }
}
