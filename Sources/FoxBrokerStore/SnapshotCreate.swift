import FoxStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension NodeSnapshot {
    /// `foxmq snapshot create`: opens the store in `dataDirectory` read-only (a running node
    /// keeps writing meanwhile; the node's lock is not needed) and snapshots it, with
    /// `configDirectory/admin.sqlite` when that exists, into `file`.
    public static func create(
        dataDirectory: String, configDirectory: String, file: String, overwrite: Bool = false
    ) throws(SnapshotError) -> SnapshotCreateReport {
        let store: NodeStore
        do {
            store = try NodeStore(directory: dataDirectory, options: LMDBOptions(readOnly: true))
        } catch {
            throw .store(error)
        }
        defer { store.close() }
        let admin = AdminDatabase.path(inDirectory: configDirectory)
        return try create(
            store: store, adminDatabasePath: SnapshotIO.exists(admin) ? admin : nil, file: file, overwrite: overwrite)
    }

    /// Snapshots an open store (read-only or the node's own) and the admin database at
    /// `adminDatabasePath` (nil: none) into `file`:
    ///
    /// 1. a compacted copy of the environment (`mdb_env_copy2` with `MDB_CP_COMPACT`), which
    ///    runs in one read transaction and so holds the store at one applied index, into a
    ///    temporary directory beside `file`;
    /// 2. the log range, checkpoint index, incarnation and last chain hash, read from the copy;
    /// 3. the admin database by SQLite's online backup API;
    /// 4. the archive (see `NodeSnapshot`), written to a temporary file, fsynced, renamed to
    ///    `file`, and the directory fsynced. An existing `file` is refused unless `overwrite`.
    ///
    /// The temporary directory and file are removed whatever happens.
    public static func create(
        store: NodeStore, adminDatabasePath: String?, file: String, overwrite: Bool = false,
        nodeID: UInt64 = 0
    ) throws(SnapshotError) -> SnapshotCreateReport {
        let started = SnapshotIO.monotonicMillis()
        if !overwrite && SnapshotIO.exists(file) {
            throw .refused(path: file, detail: "the file exists; choose another name or pass --force to replace it")
        }
        let suffix = SnapshotIO.temporarySuffix()
        let staging = "\(file).tmp-\(suffix).d"
        let temporaryFile = "\(file).tmp-\(suffix)"
        defer {
            SnapshotIO.removeTree(staging)
            unlink(temporaryFile)
        }
        if mkdir(staging, 0o700) != 0 { throw SnapshotIO.failure("create directory", staging) }

        // 1. One consistent point of the store.
        do {
            try store.environment.copy(toDirectory: staging, compact: true)
        } catch {
            throw .store(.store(error))
        }
        let createdAtMillis = SnapshotIO.nowMillis()

        // 2. What the copy holds.
        let point: SnapshotPoint
        do {
            let copy = try NodeStore(directory: staging, options: LMDBOptions(readOnly: true))
            defer { copy.close() }
            point = try copy.snapshotPoint()
        } catch {
            throw .store(error)
        }
        // The reader's lock file of that open is not part of the snapshot.
        unlink(staging + "/lock.mdb")

        // 3. The admin database.
        var names = [dataFileName]
        if let adminDatabasePath {
            do {
                let admin = try AdminDatabase.open(path: adminDatabasePath)
                try admin.backup(to: staging + "/" + adminFileName)
                try admin.close()
            } catch {
                throw .admin(error)
            }
            names.append(adminFileName)
        }

        // 4. The archive.
        var files: [SnapshotManifest.File] = []
        for name in names {
            let digest = try SnapshotIO.digest(of: staging + "/" + name)
            files.append(SnapshotManifest.File(name: name, size: digest.size, sha256: digest.sha256))
        }
        let manifest = SnapshotManifest(
            snapshotFormat: formatVersion, storeFormat: NodeStore.formatVersion, nodeID: nodeID,
            createdAt: SnapshotIO.utc(millis: createdAtMillis).iso, createdAtMillis: createdAtMillis,
            firstLogIndex: point.firstLogIndex, lastLogIndex: point.lastLogIndex, appliedIndex: point.appliedIndex,
            incarnation: point.incarnation, lastChain: point.lastChain, files: files)
        let output = try OpenFile(creating: temporaryFile)
        var writer = SnapshotArchiveWriter(output: output)
        try writer.writeHeader(manifest: manifest.encoded())
        for entry in files {
            try writer.appendFile(
                path: staging + "/" + entry.name, name: entry.name, size: entry.size, sha256: entry.sha256)
        }
        try output.sync()
        try output.close()
        try SnapshotIO.rename(temporaryFile, file)
        SnapshotIO.syncDirectory(SnapshotIO.directoryName(of: file))
        return SnapshotCreateReport(
            file: file, sizeBytes: writer.sizeBytes, manifest: manifest,
            elapsedMillis: SnapshotIO.monotonicMillis() - started)
    }
}
