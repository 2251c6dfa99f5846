import Crypto
import Foundation
import FoxBrokerStore
import FoxMQTT
import FoxStore
import NIOCore
import Synchronization
import Testing

@testable import FoxBrokerCore

/// `NodeSnapshot` (snapshot create/restore) and `NodeStoreLock`, on real LMDB stores in
/// temporary directories.
@Suite struct SnapshotTests {
    // MARK: Fixtures

    /// A node simulated without sockets: a `BrokerState` driven by events, each written as a
    /// log record, in batches with or without a checkpoint, through `NodeStore.write` as the
    /// durable orderer does.
    final class SimulatedNode: @unchecked Sendable {
        let store: NodeStore
        let state = BrokerState()
        var index: UInt64 = 0
        var chain = LogRecord.genesisChain
        var now: UInt64 = 1_000_000
        var pending: [(index: UInt64, value: ByteBuffer)] = []

        init(dataDirectory: String) throws {
            store = try NodeStore(directory: dataDirectory, options: LMDBOptions(sync: false))
        }

        func apply(_ event: BrokerEvent) {
            var actions: [BrokerAction] = []
            now += 7
            state.apply(event, atMillis: now, into: &actions)
            index += 1
            let record = LogRecord.encode(index: index, timeMillis: now, event: event.encoded, previousChain: chain)
            chain = record.chain
            pending.append((index, record.value))
        }

        func flush(checkpoint: Bool) throws {
            try store.write(records: pending, checkpoint: checkpoint ? state.takeCheckpoint(appliedIndex: index) : nil)
            pending = []
        }

        func connect(_ client: String, conn: UInt64, expiry: UInt32) {
            apply(
                .sessionOpen(
                    SessionOpen(
                        connection: ConnectionID(node: 0, local: conn), clientIdentifier: client, protocolVersion: .v5,
                        cleanStart: false, sessionExpiryIntervalSeconds: expiry, will: nil, receiveMaximum: 10,
                        maximumPacketSize: nil)))
        }

        func subscribe(conn: UInt64, _ filter: String) {
            apply(
                .subscribe(
                    ConnectionID(node: 0, local: conn),
                    Subscribe(
                        packetIdentifier: 1,
                        subscriptions: [
                            TopicSubscription(topicFilter: filter, options: SubscriptionOptions(qos: .atLeastOnce))
                        ])))
        }

        func publish(conn: UInt64, _ topic: String, _ payload: String, retain: Bool, packetIdentifier: UInt16) {
            apply(
                .publish(
                    ConnectionID(node: 0, local: conn),
                    Publish(
                        topicName: topic, payload: ByteBuffer(string: payload), qos: .atLeastOnce, retain: retain,
                        dup: false, packetIdentifier: packetIdentifier, properties: Properties())))
        }

        func close(conn: UInt64) {
            apply(
                .sessionClose(
                    ConnectionID(node: 0, local: conn),
                    SessionClose(cause: .abnormal, sessionExpiryIntervalSeconds: nil)))
        }

        /// Sessions (an offline persistent one with a queue, a connected one), retained
        /// messages, a checkpoint, then records after it that recovery must replay.
        func populate() throws {
            connect("keeper", conn: 1, expiry: 3600)
            subscribe(conn: 1, "t/#")
            close(conn: 1)
            connect("publisher", conn: 2, expiry: 3600)
            for number in 1...20 {
                publish(conn: 2, "r/\(number)", "retained \(number)", retain: true, packetIdentifier: UInt16(number))
                apply(.pubAck(ConnectionID(node: 0, local: 2), packetIdentifier: UInt16(number)))
            }
            try flush(checkpoint: false)
            for number in 1...30 {
                publish(conn: 2, "t/\(number % 3)", "queued \(number)", retain: false, packetIdentifier: UInt16(number))
                if number % 10 == 0 { try flush(checkpoint: number == 20) }
            }
            for number in 21...25 {
                publish(conn: 2, "r/\(number)", "late \(number)", retain: true, packetIdentifier: UInt16(number))
            }
            try flush(checkpoint: false)
        }
    }

    /// State digests by the index of the batch end they follow, shared with a writer thread.
    final class DigestsByIndex: @unchecked Sendable {
        private let lock = NSLock()
        private var digests: [UInt64: SHA256.Digest] = [:]

        func record(_ index: UInt64, _ digest: SHA256.Digest) {
            lock.withLock { digests[index] = digest }
        }

        func digest(at index: UInt64) -> SHA256.Digest? {
            lock.withLock { digests[index] }
        }
    }

    /// A fresh directory, removed by `remove()`.
    struct Scratch {
        let path: String

        init() throws {
            path = FileManager.default.temporaryDirectory.path + "/foxmq-snapshot-tests-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        func file(_ name: String) -> String { path + "/" + name }

        func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name)) }

        func remove() { try? FileManager.default.removeItem(atPath: path) }
    }

    /// A populated node in `scratch/node` (DIR) with its store in DIR/data and an admin
    /// database, and a snapshot of it taken while its store is open for writing.
    static func snapshotOfRunningNode(
        in scratch: Scratch
    ) throws -> (node: SimulatedNode, report: SnapshotCreateReport) {
        let node = try SimulatedNode(dataDirectory: scratch.file("node/data"))
        try node.populate()
        let admin = try AdminDatabase.open(directory: scratch.file("node"))
        try admin.setSetting("snapshot.test", to: "kept")
        let report = try NodeSnapshot.create(
            store: node.store, adminDatabasePath: admin.path, file: scratch.file("node.snap"))
        try admin.close()
        return (node, report)
    }

    static func bytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Where data.mdb starts in an archive: magic, version, manifest length, manifest, its
    /// SHA-256, data.mdb's length.
    static func dataOffset(_ archive: [UInt8]) -> Int {
        let manifestLength = archive[12..<16].reduce(0) { $0 << 8 | Int($1) }
        return 16 + manifestLength + 32 + 8
    }

    static func restoreError(
        _ file: String, into scratch: Scratch, _ directory: String = "restored"
    ) -> SnapshotError? {
        do {
            _ = try NodeSnapshot.restore(
                file: file, dataDirectory: scratch.file(directory + "/data"), configDirectory: scratch.file(directory))
            return nil
        } catch {
            return error
        }
    }

    // MARK: Round trip

    // Goal: a snapshot taken while the store is open for writing restores into an empty
    // directory as a store that recovers to the same state (equal digest), with the manifest
    // naming the log range and checkpoint of the copy, the store marked restored, and the
    // admin database restored beside it.
    @Test func snapshotUnderWriterRestoresToTheSameState() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (node, report) = try Self.snapshotOfRunningNode(in: scratch)

        let manifest = report.manifest
        #expect(manifest.snapshotFormat == NodeSnapshot.formatVersion)
        #expect(manifest.storeFormat == NodeStore.formatVersion)
        #expect(manifest.nodeID == 0)
        #expect(manifest.firstLogIndex == 1)
        #expect(manifest.lastLogIndex == node.index)
        #expect(manifest.appliedIndex > 0 && manifest.appliedIndex < node.index)
        #expect(manifest.lastChain == node.chain.map { String(format: "%02x", $0) }.joined())
        #expect(manifest.files.map(\.name) == ["data.mdb", "admin.sqlite"])
        #expect(report.sizeBytes == UInt64(try Self.bytes(scratch.file("node.snap")).count))
        // Nothing temporary is left beside the file.
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted() == ["node", "node.snap"])

        // The node goes on writing after the snapshot; the snapshot does not see it.
        let digestAtSnapshot = node.state.stateDigest(appliedIndex: node.index)
        let indexAtSnapshot = node.index
        let source = try node.store.recover(defaultLimits: BrokerLimits()) { _ in }
        node.publish(conn: 2, "r/after", "after the snapshot", retain: true, packetIdentifier: 99)
        try node.flush(checkpoint: true)

        let restored = try NodeSnapshot.restore(
            file: scratch.file("node.snap"), dataDirectory: scratch.file("restored/data"),
            configDirectory: scratch.file("restored"))
        #expect(restored.movedAside.isEmpty)
        #expect(restored.recoveredIndex == indexAtSnapshot)
        #expect(restored.sessionCount == 2)
        #expect(restored.retainedCount == 25)

        let store = try NodeStore(directory: scratch.file("restored/data"), options: LMDBOptions())
        #expect(try store.isRestored())
        let recovered = try store.recover(defaultLimits: BrokerLimits()) { _ in }
        #expect(recovered.lastIndex == indexAtSnapshot)
        #expect(recovered.checkpointIndex == manifest.appliedIndex)
        #expect(recovered.replayedCount > 0)
        #expect(
            recovered.state.stateDigest(appliedIndex: indexAtSnapshot)
                == source.state.stateDigest(appliedIndex: indexAtSnapshot))
        #expect(recovered.state.stateDigest(appliedIndex: indexAtSnapshot) == digestAtSnapshot)
        #expect(recovered.lastChain == source.lastChain)
        store.close()

        let admin = try AdminDatabase.open(path: scratch.file("restored/admin.sqlite"))
        #expect(try admin.setting("snapshot.test") == "kept")
        try admin.close()
    }

    // Goal: a snapshot taken while another thread keeps committing batches holds exactly one
    // committed batch boundary: the restored store recovers to the state the writer had right
    // after the batch that ends at the manifest's last index.
    @Test func snapshotDuringConcurrentWritesIsAtOneCommittedBatch() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let node = try SimulatedNode(dataDirectory: scratch.file("node/data"))
        try node.populate()
        let digests = DigestsByIndex()
        digests.record(node.index, node.state.stateDigest(appliedIndex: 0))
        let stop = Atomic<Bool>(false)
        let batches = Atomic<Int>(0)
        let finished = DispatchSemaphore(value: 0)
        let writer = Thread {
            defer { finished.signal() }
            var batch = 0
            var afterStop = 0
            while afterStop < 3 {
                if stop.load(ordering: .acquiring) { afterStop += 1 }
                batch += 1
                for number in 0..<5 {
                    node.publish(
                        conn: 2, "t/\(number)", "batch \(batch)", retain: number == 0,
                        packetIdentifier: UInt16(truncatingIfNeeded: batch))
                }
                do {
                    try node.flush(checkpoint: batch % 3 == 0)
                } catch {
                    Issue.record("write: \(error)")
                    return
                }
                let digest = node.state.stateDigest(appliedIndex: 0)
                digests.record(node.index, digest)
                batches.add(1, ordering: .releasing)
                if batch > 100_000 { return }
            }
        }
        writer.start()
        while batches.load(ordering: .acquiring) < 10 { usleep(1000) }
        let report = try NodeSnapshot.create(store: node.store, adminDatabasePath: nil, file: scratch.file("s"))
        stop.store(true, ordering: .releasing)
        finished.wait()

        let lastIndex = try #require(report.manifest.lastLogIndex)
        let expected = try #require(digests.digest(at: lastIndex), "index \(lastIndex) is not a batch end")
        #expect(lastIndex < node.index, "the writer went on after the snapshot")
        let restored = try NodeSnapshot.restore(
            file: scratch.file("s"), dataDirectory: scratch.file("restored/data"),
            configDirectory: scratch.file("restored"))
        #expect(restored.recoveredIndex == lastIndex)
        let store = try NodeStore(directory: scratch.file("restored/data"), options: LMDBOptions(readOnly: true))
        defer { store.close() }
        let recovered = try store.recover(defaultLimits: BrokerLimits()) { _ in }
        #expect(recovered.state.stateDigest(appliedIndex: 0) == expected)
    }

    // Goal: `create(dataDirectory:)` opens the store read-only, without the writer's lock, and
    // a snapshot of a node without an admin database holds data.mdb only.
    @Test func createFromADirectoryWithoutAdminDatabase() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        do {
            let node = try SimulatedNode(dataDirectory: scratch.file("node/data"))
            try node.populate()
            node.store.close()
        }
        let report = try NodeSnapshot.create(
            dataDirectory: scratch.file("node/data"), configDirectory: scratch.file("node"), file: scratch.file("s"))
        #expect(report.manifest.files.map(\.name) == ["data.mdb"])
        // A second create onto the same file is refused unless asked.
        #expect(throws: SnapshotError.self) {
            _ = try NodeSnapshot.create(
                dataDirectory: scratch.file("node/data"), configDirectory: scratch.file("node"),
                file: scratch.file("s"))
        }
        _ = try NodeSnapshot.create(
            dataDirectory: scratch.file("node/data"), configDirectory: scratch.file("node"), file: scratch.file("s"),
            overwrite: true)
        let restored = try NodeSnapshot.restore(
            file: scratch.file("s"), dataDirectory: scratch.file("restored/data"),
            configDirectory: scratch.file("restored"))
        #expect(restored.adminDatabase == nil)
        #expect(!scratch.exists("restored/admin.sqlite"))
    }

    // MARK: Damaged archives

    // Goal: a flipped byte anywhere is found before anything is put in place, and the error
    // names the archive and the part: the manifest, data.mdb or admin.sqlite.
    @Test func corruptedByteIsFoundAndNamed() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (_, report) = try Self.snapshotOfRunningNode(in: scratch)
        let archive = try Self.bytes(scratch.file("node.snap"))
        let dataStart = Self.dataOffset(archive)
        let dataSize = Int(report.manifest.files[0].size)
        let cases: [(offset: Int, expected: String)] = [
            (0, "not a foxmq snapshot"),
            (20, "checksum mismatch for the manifest"),
            (dataStart - 40, "checksum mismatch for the manifest"),
            (dataStart - 1, "data.mdb is"),
            (dataStart + 100, "checksum mismatch for data.mdb"),
            (dataStart + dataSize - 1, "checksum mismatch for data.mdb"),
            (archive.count - 1, "checksum mismatch for admin.sqlite"),
        ]
        for (number, (offset, expected)) in cases.enumerated() {
            var damaged = archive
            damaged[offset] ^= 0x10
            let file = scratch.file("damaged-\(number).snap")
            try Self.write(damaged, to: file)
            let error = Self.restoreError(file, into: scratch)
            let text = error.map { "\($0)" } ?? "no error"
            #expect(text.hasPrefix(file + ": "), "byte \(offset): \(text)")
            #expect(text.contains(expected), "byte \(offset): \(text)")
            #expect(!scratch.exists("restored/data"), "byte \(offset)")
        }
        // Nothing staged is left behind.
        #expect(!scratch.exists("restored"))
    }

    // Goal: an archive cut anywhere says where it ends and in which part.
    @Test func truncatedArchiveSaysWhere() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        _ = try Self.snapshotOfRunningNode(in: scratch)
        let archive = try Self.bytes(scratch.file("node.snap"))
        let dataStart = Self.dataOffset(archive)
        let cuts: [(length: Int, part: String)] = [
            (0, "the header"), (5, "the header"), (14, "the header"), (30, "the manifest"),
            (dataStart - 20, "the manifest checksum"), (dataStart - 3, "the length of data.mdb"),
            (dataStart + 4096, "data.mdb"), (archive.count - 1, "admin.sqlite"),
        ]
        for (length, part) in cuts {
            let file = scratch.file("cut-\(length).snap")
            try Self.write(Array(archive[0..<length]), to: file)
            let error = Self.restoreError(file, into: scratch)
            guard case .truncated(let named, let atByte, let within) = error else {
                Issue.record("cut at \(length): \(error.map { "\($0)" } ?? "no error")")
                continue
            }
            #expect(named == file)
            #expect(atByte == UInt64(length))
            #expect(within == part)
            #expect("\(error!)".contains("truncated at byte \(length)"))
        }
        #expect(!scratch.exists("restored"))
    }

    // Goal: a snapshot or store format newer than this build is refused by name, before the
    // rest is read.
    @Test func newerFormatsAreRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        _ = try Self.snapshotOfRunningNode(in: scratch)
        let archive = try Self.bytes(scratch.file("node.snap"))

        var newerArchive = archive
        newerArchive[11] = UInt8(NodeSnapshot.formatVersion + 1)
        try Self.write(newerArchive, to: scratch.file("newer-archive.snap"))
        let archiveError = Self.restoreError(scratch.file("newer-archive.snap"), into: scratch)
        guard case .formatTooNew(_, "snapshot format", let found, let supported) = archiveError else {
            Issue.record("\(archiveError.map { "\($0)" } ?? "no error")")
            return
        }
        #expect(found == UInt64(NodeSnapshot.formatVersion + 1) && supported == UInt64(NodeSnapshot.formatVersion))
        #expect("\(archiveError!)".contains("newer foxmq"))

        // The manifest rewritten with a newer store format, its checksum recomputed.
        let manifestLength = archive[12..<16].reduce(0) { $0 << 8 | Int($1) }
        let manifest = String(decoding: archive[16..<(16 + manifestLength)], as: UTF8.self)
        let newerManifest = Array(
            manifest.replacingOccurrences(
                of: "\"storeFormat\" : \(NodeStore.formatVersion)",
                with: "\"storeFormat\" : \(NodeStore.formatVersion + 1)"
            ).utf8)
        #expect(newerManifest.count == manifestLength)
        let newerStore =
            Array(archive[0..<16]) + newerManifest + Array(SHA256.hash(data: newerManifest))
            + Array(archive[(16 + manifestLength + 32)...])
        try Self.write(newerStore, to: scratch.file("newer-store.snap"))
        let storeError = Self.restoreError(scratch.file("newer-store.snap"), into: scratch)
        guard case .formatTooNew(_, "store format", _, _) = storeError else {
            Issue.record("\(storeError.map { "\($0)" } ?? "no error")")
            return
        }
        #expect("\(storeError!)".hasPrefix(scratch.file("newer-store.snap") + ": store format 2"))
    }

    // MARK: Targets

    // Goal: a data directory whose lock a writer holds is refused (nothing moved, even with
    // --force); a non-empty one is refused without --force; --force moves the data directory
    // and admin.sqlite aside and restores.
    @Test func restoreRefusesADirectoryInUseOrNotEmpty() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        _ = try Self.snapshotOfRunningNode(in: scratch)
        let file = scratch.file("node.snap")
        let data = scratch.file("target/data")

        let running = try NodeStore(directory: data, options: LMDBOptions(sync: false))
        for force in [false, true] {
            do {
                _ = try NodeSnapshot.restore(
                    file: file, dataDirectory: data, configDirectory: scratch.file("target"), force: force)
                Issue.record("restore into a directory in use succeeded (force \(force))")
            } catch {
                #expect("\(error)".hasPrefix(data + ": "), "\(error)")
                #expect("\(error)".contains("pid \(getpid())"), "\(error)")
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.file("target")) == ["data"])
        running.close()

        // Not in use but not empty.
        let admin = try AdminDatabase.open(directory: scratch.file("target"))
        try admin.setSetting("old", to: "yes")
        try admin.close()
        #expect(throws: SnapshotError.self) {
            _ = try NodeSnapshot.restore(file: file, dataDirectory: data, configDirectory: scratch.file("target"))
        }
        let report = try NodeSnapshot.restore(
            file: file, dataDirectory: data, configDirectory: scratch.file("target"), force: true)
        #expect(report.movedAside.count >= 2)
        for (from, to) in report.movedAside {
            #expect(FileManager.default.fileExists(atPath: to), "\(from) -> \(to)")
            #expect(to.hasPrefix(from.hasSuffix("-wal") || from.hasSuffix("-shm") ? String(from.dropLast(4)) : from))
            #expect(to.contains(".before-restore-"))
        }
        let restored = try AdminDatabase.open(path: scratch.file("target/admin.sqlite"))
        #expect(try restored.setting("old") == nil)
        #expect(try restored.setting("snapshot.test") == "kept")
        try restored.close()
        let store = try NodeStore(directory: data, options: LMDBOptions())
        #expect(try store.isRestored())
        store.close()
    }

    // MARK: The lock

    // Goal: one writable store per directory: a second writable open fails naming the
    // directory and the holder; read-only opens do not take the lock; after close the next
    // writer gets it.
    @Test func lockRefusesASecondWriter() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let data = scratch.file("data")
        let first = try NodeStore(directory: data, options: LMDBOptions(sync: false))
        do {
            _ = try NodeStore(directory: data, options: LMDBOptions(sync: false))
            Issue.record("a second writable open succeeded")
        } catch {
            guard case .inUse(let file, let detail) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(file == data)
            #expect(detail.contains("pid \(getpid())"))
        }
        // The lock file holds the pid, mode 0600.
        let text = try String(contentsOfFile: data + "/node.lock", encoding: .utf8)
        #expect(text == "\(getpid())\n")
        let attributes = try FileManager.default.attributesOfItem(atPath: data + "/node.lock")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        // A bare lock on the same directory (as restore takes it) is refused too.
        #expect(throws: NodeStoreError.self) { _ = try NodeStoreLock(directory: data) }

        first.close()
        let second = try NodeStore(directory: data, options: LMDBOptions(sync: false))
        second.close()
        // Read-only opens take no lock: one runs beside a lock held by someone else.
        let lock = try NodeStoreLock(directory: data)
        let reader = try NodeStore(directory: data, options: LMDBOptions(readOnly: true))
        reader.close()
        lock.release()
    }
}
