import FoxBrokerCore
import FoxStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension NodeSnapshot {
    /// `foxmq snapshot restore`: puts the snapshot `file` in place as the store in
    /// `dataDirectory` and, when it holds one, as `configDirectory/admin.sqlite`.
    ///
    /// Everything is verified before anything in place is touched: the header, the formats (a
    /// newer snapshot or store format is refused), the manifest's checksum, every file's size
    /// and SHA-256, that the store inside opens read-only and holds the log range, applied index,
    /// incarnation and last chain hash the manifest names, that it recovers (rows load, the log
    /// after the checkpoint replays), and that the admin database opens. The files are extracted
    /// into a staging directory beside `dataDirectory` (same file system, so the final step is a
    /// rename).
    ///
    /// Then the targets: a data directory in use (its `node.lock` held: a node runs on it) is
    /// refused; so is a non-empty one, or an existing admin database, unless `force`, which
    /// moves them aside to `DATA.before-restore-<UTC stamp>` and
    /// `admin.sqlite.before-restore-<UTC stamp>` (with its `-wal` and `-shm`). The store is
    /// marked restored (`NodeStore.isRestored`), admin.sqlite and then the staging directory are
    /// renamed into place, and the directories fsynced.
    public static func restore(
        file: String, dataDirectory: String, configDirectory: String, force: Bool = false
    ) throws(SnapshotError) -> SnapshotRestoreReport {
        let started = SnapshotIO.monotonicMillis()
        let parent = SnapshotIO.directoryName(of: dataDirectory)
        let parentExisted = SnapshotIO.isDirectory(parent)
        try SnapshotIO.makeDirectories(parent)
        let staging = "\(parent)/.\(SnapshotIO.baseName(of: dataDirectory)).restore-\(SnapshotIO.temporarySuffix())"
        var placed = false
        defer {
            if !placed {
                SnapshotIO.removeTree(staging)
                // A refused restore leaves no empty directory behind it.
                if !parentExisted { rmdir(parent) }
            }
        }
        if mkdir(staging, 0o700) != 0 { throw SnapshotIO.failure("create directory", staging) }

        // 1. Extract and verify every byte.
        var reader = try SnapshotArchiveReader(file: file)
        let manifest = try reader.readManifest()
        for entry in manifest.files {
            let length = try reader.integer(UInt64.self, within: "the length of \(entry.name)")
            guard length == entry.size else {
                throw .invalid(
                    file: file,
                    detail:
                        "\(entry.name) is \(length) bytes in the archive but \(entry.size) in the manifest; the snapshot is damaged"
                )
            }
            let computed = try reader.extract(size: length, to: staging + "/" + entry.name, within: entry.name)
            guard computed == entry.sha256 else {
                throw .checksumMismatch(file: file, entry: entry.name, expected: entry.sha256, computed: computed)
            }
        }
        try reader.expectEnd()
        SnapshotIO.syncDirectory(staging)

        // 2. The store inside is the one the manifest describes, and it recovers.
        let recovered: RecoveredState
        do {
            let store = try NodeStore(directory: staging, options: LMDBOptions(readOnly: true))
            defer { store.close() }
            let point = try store.snapshotPoint()
            let expected = SnapshotPoint(
                firstLogIndex: manifest.firstLogIndex, lastLogIndex: manifest.lastLogIndex,
                appliedIndex: manifest.appliedIndex, incarnation: manifest.incarnation, lastChain: manifest.lastChain)
            guard point == expected else {
                throw SnapshotError.invalid(
                    file: file,
                    detail:
                        "the manifest says \(describe(expected)) but the store inside holds \(describe(point)); the snapshot is damaged"
                )
            }
            recovered = try store.recover(defaultLimits: BrokerLimits()) { _ in }
        } catch let error as SnapshotError {
            throw error
        } catch let error as NodeStoreError {
            throw .store(error)
        } catch {
            throw .invalid(file: file, detail: "\(error)")
        }
        let hasAdmin = manifest.files.contains { $0.name == adminFileName }
        if hasAdmin {
            do {
                let admin = try AdminDatabase.open(path: staging + "/" + adminFileName)
                try admin.close()
            } catch {
                throw .admin(error)
            }
        }

        // 3. The targets: not in use, empty unless forced.
        var targetLock: NodeStoreLock?
        defer { targetLock?.release() }
        var dataEntries: [String] = []
        var status = stat()
        if lstat(dataDirectory, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFDIR else {
                throw .refused(path: dataDirectory, detail: "exists and is not a directory")
            }
            do {
                targetLock = try NodeStoreLock(directory: dataDirectory, creatingDirectory: false)
            } catch {
                if case .inUse(let path, let detail) = error {
                    throw .refused(path: path, detail: "\(detail); stop that node before restoring")
                }
                throw .store(error)
            }
            dataEntries = try SnapshotIO.entries(of: dataDirectory).filter { $0 != NodeStoreLock.fileName }
        }
        let adminPath = AdminDatabase.path(inDirectory: configDirectory)
        let adminNames = ["", "-wal", "-shm", "-journal"].map { adminPath + $0 }.filter(SnapshotIO.exists)
        if !force {
            if !dataEntries.isEmpty {
                throw .refused(
                    path: dataDirectory,
                    detail:
                        "not empty (\(dataEntries.prefix(5).joined(separator: ", "))\(dataEntries.count > 5 ? ", ..." : "")); restore into an empty data directory, or pass --force to move it aside"
                )
            }
            if hasAdmin, let existing = adminNames.first {
                throw .refused(
                    path: existing, detail: "exists; pass --force to move it aside and restore the snapshot's")
            }
        }
        try SnapshotIO.makeDirectories(configDirectory)

        // 4. Mark the store restored, while it is still in staging.
        do {
            let store = try NodeStore(directory: staging, options: LMDBOptions())
            defer { store.close() }
            try store.markRestored(true)
        } catch {
            throw .store(error)
        }

        // 5. Move the old ones aside, put the new ones in place.
        let stamp = SnapshotIO.utc(millis: SnapshotIO.nowMillis()).stamp
        var movedAside: [(from: String, to: String)] = []
        if !dataEntries.isEmpty {
            let aside = uniqueName("\(dataDirectory).before-restore-\(stamp)")
            try SnapshotIO.rename(dataDirectory, aside)
            movedAside.append((dataDirectory, aside))
        } else if SnapshotIO.exists(dataDirectory) {
            // Empty but for our lock file: make room for the rename.
            unlink(NodeStoreLock.path(inDirectory: dataDirectory))
            if rmdir(dataDirectory) != 0 { throw SnapshotIO.failure("remove the empty directory", dataDirectory) }
        }
        var restoredAdmin: String?
        if hasAdmin {
            if !adminNames.isEmpty {
                let aside = uniqueName("\(adminPath).before-restore-\(stamp)")
                for name in adminNames {
                    let to = aside + name.dropFirst(adminPath.count)
                    try SnapshotIO.rename(name, to)
                    movedAside.append((name, to))
                }
            }
            for suffix in ["", "-wal", "-shm"] where SnapshotIO.exists(staging + "/" + adminFileName + suffix) {
                try SnapshotIO.move(staging + "/" + adminFileName + suffix, adminPath + suffix)
            }
            SnapshotIO.syncDirectory(configDirectory)
            restoredAdmin = adminPath
        }
        try SnapshotIO.rename(staging, dataDirectory)
        placed = true
        SnapshotIO.syncDirectory(parent)
        return SnapshotRestoreReport(
            file: file, manifest: manifest, dataDirectory: dataDirectory, adminDatabase: restoredAdmin,
            movedAside: movedAside, sessionCount: recovered.state.sessionCount,
            retainedCount: recovered.state.retainedMessageCount, recoveredIndex: recovered.lastIndex,
            elapsedMillis: SnapshotIO.monotonicMillis() - started)
    }

    /// `path`, or `path-2`, `path-3`, ... if it exists.
    private static func uniqueName(_ path: String) -> String {
        var candidate = path
        var number = 2
        while SnapshotIO.exists(candidate) {
            candidate = "\(path)-\(number)"
            number += 1
        }
        return candidate
    }

    private static func describe(_ point: SnapshotPoint) -> String {
        let range = point.firstLogIndex.map { first in "\(first)...\(point.lastLogIndex ?? 0)" } ?? "empty"
        return
            "log \(range), applied index \(point.appliedIndex), incarnation \(point.incarnation.map(String.init) ?? "none"), last chain \(point.lastChain ?? "none")"
    }
}
