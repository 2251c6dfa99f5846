import CLMDB
import Dispatch
import FoxFiles
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An LMDB environment: the directory holding `data.mdb` and `lock.mdb`, with its tables.
/// Bytes in, bytes out; key and value codecs are the caller's.
///
/// Threads: one writer thread (the node's log writer) calls `write`; any thread may call `read`
/// for short reads (start-up load, snapshot copy), and `foxdump` reads from another process.
/// The environment is opened with `MDB_NOTLS`, so a reader slot belongs to a transaction, not a
/// thread, and transactions live only inside `read`/`write` bodies, which are synchronous: no
/// transaction spans an `await` or outlives its call.
///
/// The map grows by itself: when a write finds it full, `write` aborts, grows the map (see
/// `LMDBOptions`) and reruns the body, until `mapSizeMaxBytes` or the free disk space is
/// reached, where it throws `StoreError.full`.
///
/// Never start a transaction inside the body of another one on the same thread (see
/// `LMDBResizeLock`).
public final class LMDBEnvironment: @unchecked Sendable {
    /// The directory as given.
    public let directory: String
    /// `directory/data.mdb`, the path errors name.
    public let dataPath: String
    public let options: LMDBOptions
    /// Reader slots of dead processes that `mdb_reader_check` freed at open. A non-zero count
    /// means a reader (foxdump, an earlier node) died inside a transaction; worth a log line.
    public let staleReadersCleared: Int

    private let environment: OpaquePointer
    private let realPath: String
    private let serial: UInt64
    private let keySizeMaxBytes: Int
    private let pageSizeBytes: Int
    private let resizeLock = LMDBResizeLock()
    private let lastCommitNanos = Atomic<UInt64>(0)

    /// How long the last write transaction's commit took: LMDB writes the dirty pages, syncs
    /// them, then writes and syncs the meta page (both syncs skipped without `options.sync`).
    public var lastCommitNanoseconds: UInt64 { lastCommitNanos.load(ordering: .relaxed) }
    /// Changed only under the exclusive side of `resizeLock`, read under either side.
    private var isOpen = true
    private var mapSizeBytes: Int
    /// Tables by name. The mutex also serializes `mdb_dbi_open`, which LMDB allows in only one
    /// transaction of the process at a time.
    private let tables = Mutex<[String: LMDBTable]>([:])

    /// Opens (and unless `options.readOnly`, creates) the environment in `directory`.
    ///
    /// - Throws: `StoreError.notAStore` when a read-only open finds no directory or no
    ///   `data.mdb`, or `data.mdb` is not an LMDB file (damaged meta pages look the same);
    ///   `.inUse` when this process has the environment open already; `.io` otherwise.
    public init(directory: String, options: LMDBOptions = LMDBOptions()) throws(StoreError) {
        precondition(options.mapSizeBytes > 0 && options.mapGrowthBytes > 0, "map sizes must be positive")
        precondition(options.readersMax > 0 && options.tablesMax > 0, "readersMax and tablesMax must be positive")
        let dataPath = Files.join(directory, "data.mdb")
        if options.readOnly {
            var status = stat()
            guard stat(directory, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
                throw StoreError.notAStore(path: directory, detail: "no such directory")
            }
            guard stat(dataPath, &status) == 0 else {
                throw StoreError.notAStore(path: directory, detail: "the directory has no data.mdb")
            }
        } else {
            do {
                try Files.makeDirectories(directory, mode: 0o777)
            } catch {
                throw StoreError.io(
                    operation: "create directory", path: directory, code: error.errno, message: error.message)
            }
        }
        guard let resolved = realpath(directory, nil) else {
            let code = errno
            throw StoreError.io(
                operation: "realpath", path: directory, code: code, message: String(cString: strerror(code)))
        }
        let realPath = String(cString: resolved)
        free(resolved)
        guard let serial = LMDBOpenDirectories.register(realPath) else {
            throw StoreError.inUse(path: directory)
        }
        var registered = true
        defer { if registered { LMDBOpenDirectories.unregister(realPath) } }

        var created: OpaquePointer?
        var code = mdb_env_create(&created)
        guard code == 0, let environment = created else {
            throw StoreError(lmdbCode: code, operation: "mdb_env_create", path: dataPath)
        }
        var flags = UInt32(MDB_NOTLS)
        if !options.sync { flags |= UInt32(MDB_NOSYNC) }
        if options.readOnly { flags |= UInt32(MDB_RDONLY) }
        code = mdb_env_set_maxreaders(environment, UInt32(options.readersMax))
        if code == 0 { code = mdb_env_set_maxdbs(environment, MDB_dbi(options.tablesMax)) }
        // Start no larger than ordinary writes may grow (see LMDBOptions.freeingReserveBytes).
        var initialMapSizeBytes = options.mapSizeBytes
        if let capBytes = options.mapSizeMaxBytes {
            let osPageSizeBytes = Int(sysconf(Int32(_SC_PAGESIZE)))
            let ordinaryCapBytes = capBytes - min(max(0, options.freeingReserveBytes), capBytes / 4)
            initialMapSizeBytes = min(initialMapSizeBytes, ordinaryCapBytes / osPageSizeBytes * osPageSizeBytes)
        }
        if code == 0 { code = mdb_env_set_mapsize(environment, initialMapSizeBytes) }
        if code == 0 { code = mdb_env_open(environment, directory, flags, 0o600) }
        // LMDB keeps the map size given before open even if the file recorded a larger one;
        // adopt the file's (0 = "from the meta page"), then make sure it is at least the option.
        if code == 0 { code = mdb_env_set_mapsize(environment, 0) }
        var information = MDB_envinfo()
        if code == 0 { code = mdb_env_info(environment, &information) }
        if code == 0 && !options.readOnly && information.me_mapsize < initialMapSizeBytes {
            code = mdb_env_set_mapsize(environment, initialMapSizeBytes)
            if code == 0 { code = mdb_env_info(environment, &information) }
        }
        var staleReaders: Int32 = 0
        if code == 0 { code = mdb_reader_check(environment, &staleReaders) }
        var statistics = MDB_stat()
        if code == 0 { code = mdb_env_stat(environment, &statistics) }
        if code != 0 {
            mdb_env_close(environment)
            throw StoreError(lmdbCode: code, operation: "open", path: dataPath)
        }

        self.directory = directory
        self.dataPath = dataPath
        self.options = options
        self.environment = environment
        self.realPath = realPath
        self.serial = serial
        self.keySizeMaxBytes = Int(mdb_env_get_maxkeysize(environment))
        self.pageSizeBytes = Int(statistics.ms_psize)
        self.mapSizeBytes = information.me_mapsize
        self.staleReadersCleared = Int(staleReaders)
        registered = false
    }

    deinit {
        close()
    }

    /// Closes the environment (also done on deinit). Waits for running transactions; using the
    /// environment afterwards is a programming error. Table handles die with it.
    public func close() {
        resizeLock.lockExclusive()
        defer { resizeLock.unlock() }
        guard isOpen else { return }
        isOpen = false
        mdb_env_close(environment)
        LMDBOpenDirectories.unregister(realPath)
    }

    /// The table `name`, created if missing unless the environment is read-only.
    ///
    /// - Throws: `StoreError.tableMissing` in read-only mode when the table does not exist,
    ///   `.io` with `MDB_DBS_FULL` beyond `LMDBOptions.tablesMax`.
    public func openTable(_ name: String) throws(StoreError) -> LMDBTable {
        try tables.withLock { tables throws(StoreError) -> LMDBTable in
            if let table = tables[name] { return table }
            let handle: UInt32
            if options.readOnly {
                // A handle opened in a read transaction survives only if that transaction
                // commits (lmdb.h, mdb_dbi_open).
                let (pointer, _) = try beginTransaction(readOnly: true)
                defer { resizeLock.unlock() }
                let opened = core(pointer).openTableHandle(name, create: false)
                if opened.code != 0 {
                    mdb_txn_abort(pointer)
                    throw opened.error
                }
                let code = mdb_txn_commit(pointer)
                if code != 0 { throw StoreError(lmdbCode: code, operation: "open table", path: dataPath, table: name) }
                handle = opened.handle
            } else {
                do {
                    handle = try write { transaction in try transaction.openTableHandle(name, create: true) }
                } catch let error as StoreError {
                    throw error
                } catch {
                    preconditionFailure("openTableHandle throws StoreError only: \(error)")
                }
            }
            let table = LMDBTable(name: name, handle: handle, environmentSerial: serial)
            tables[name] = table
            return table
        }
    }

    /// Runs `body` in one write transaction and commits it: durable on return unless
    /// `options.sync` is false. If `body` throws, the transaction is aborted and nothing is
    /// written.
    ///
    /// When the map fills up (at a put or at the commit), the transaction is aborted, the map
    /// grows and **`body` runs again from the start**, so it must be re-runnable: no side
    /// effects outside the transaction that a second run would repeat. Beyond the cap
    /// (`options.mapSizeMaxBytes` less `options.freeingReserveBytes`), or when the disk (less
    /// `options.diskReserveBytes`) has no room for the growth, it throws `StoreError.full`
    /// instead, and so it does when the disk fills at commit (`ENOSPC`); an `EIO` at commit
    /// throws `.io`. In every failure the transaction wrote nothing: LMDB updates the meta page
    /// only after all data pages are written.
    ///
    /// - Parameter freeingSpace: the body deletes to make room (a trim after `full`). It may
    ///   grow the map into the reserves up to `mapSizeMaxBytes` itself, because in LMDB even a
    ///   delete needs fresh pages; afterwards the map goes back below the ordinary cap, so the
    ///   reserve stays for the next trim. Ordinary writes must not pass true.
    ///
    /// Meant for the single writer thread; a second concurrent writer waits for the first. Not
    /// for a read-only environment (a programming error).
    @available(*, noasync, message: "blocks on fsync and on the writer lock; run it on the writer thread")
    public func write<Result>(
        freeingSpace: Bool = false, _ body: (inout LMDBWriteTransaction) throws -> Result
    ) throws -> Result {
        precondition(!options.readOnly, "write on the read-only LMDB environment \(dataPath)")
        while true {
            let (pointer, mapSizeAtBeginBytes) = try beginTransaction(readOnly: false)
            var transaction = LMDBWriteTransaction(core: core(pointer))
            let result: Result
            do {
                result = try body(&transaction)
            } catch {
                mdb_txn_abort(pointer)
                resizeLock.unlock()
                guard transaction.mapFull else { throw error }
                try growMap(fullAtBytes: mapSizeAtBeginBytes, freeingSpace: freeingSpace)
                continue
            }
            if transaction.mapFull {
                mdb_txn_abort(pointer)
                resizeLock.unlock()
                try growMap(fullAtBytes: mapSizeAtBeginBytes, freeingSpace: freeingSpace)
                continue
            }
            // mdb_txn_commit frees the transaction whether it succeeds or not.
            let commitStarted = DispatchTime.now().uptimeNanoseconds
            let code = mdb_txn_commit(pointer)
            lastCommitNanos.store(DispatchTime.now().uptimeNanoseconds &- commitStarted, ordering: .relaxed)
            resizeLock.unlock()
            if code == 0 {
                if freeingSpace { try shrinkMapToOrdinaryCap() }
                return result
            }
            if code == MDB_MAP_FULL {
                try growMap(fullAtBytes: mapSizeAtBeginBytes, freeingSpace: freeingSpace)
                continue
            }
            // LMDB reports a short write (the disk filled in the middle of a page run) as EIO.
            // With the disk (nearly) full that is a full store, not a failed device: nothing
            // was committed (the meta page is written last) and the write can be retried.
            if code == EIO, let freeBytes = diskFreeBytes(), freeBytes < Self.diskNearlyFullBytes {
                throw StoreError.full(
                    "\(dataPath): the disk filled during the commit (\(freeBytes) bytes free); nothing of the transaction was written"
                )
            }
            throw StoreError(lmdbCode: code, operation: "commit", path: dataPath)
        }
    }

    /// Free space below which an I/O error at commit is taken for a full disk.
    static let diskNearlyFullBytes = 16 << 20

    /// The bytes available to this process on the store's file system, if statvfs answers.
    func diskFreeBytes() -> Int? {
        var fileSystem = statvfs()
        guard statvfs(directory, &fileSystem) == 0 else { return nil }
        return Int(fileSystem.f_bavail) * Int(fileSystem.f_frsize)
    }

    /// Runs `body` in a read transaction (a consistent snapshot), ended before `read` returns.
    /// Keep bodies short: a running reader keeps the pages freed since it began from being
    /// reused, so the file grows.
    public func read<Result>(_ body: (borrowing LMDBReadTransaction) throws -> Result) throws -> Result {
        let (pointer, _) = try beginTransaction(readOnly: true)
        defer {
            mdb_txn_abort(pointer)
            resizeLock.unlock()
        }
        let transaction = LMDBReadTransaction(core: core(pointer))
        return try body(transaction)
    }

    /// Writes a consistent copy of the environment into `toDirectory` (created if needed; it
    /// must not hold a `data.mdb`) and syncs it. `compact` omits free pages and renumbers the
    /// rest (`MDB_CP_COMPACT`), which also fails if the environment has leaked pages.
    ///
    /// The copy runs inside a read transaction of its own: while it runs, the map cannot grow,
    /// so a writer that fills the map waits for it, and freed pages are not reused.
    public func copy(toDirectory: String, compact: Bool) throws(StoreError) {
        do {
            try Files.makeDirectories(toDirectory, mode: 0o777)
        } catch {
            throw StoreError.io(
                operation: "create directory", path: toDirectory, code: error.errno, message: error.message)
        }
        let copyPath = Files.join(toDirectory, "data.mdb")
        try withSharedLock { () throws(StoreError) in
            let code = mdb_env_copy2(environment, toDirectory, compact ? UInt32(MDB_CP_COMPACT) : 0)
            if code != 0 { throw StoreError(lmdbCode: code, operation: "copy to \(toDirectory)", path: dataPath) }
        }
        // mdb_env_copy2 does not sync the copy, and a snapshot is only worth something on disk.
        let copy: FileDescriptor
        do {
            copy = try FileDescriptor.open(FilePath(copyPath), .readWrite, options: .closeOnExec)
        } catch {
            let code = (error as? Errno)?.rawValue ?? EIO
            throw StoreError.io(operation: "open", path: copyPath, code: code, message: String(cString: strerror(code)))
        }
        _ = fchmod(copy.rawValue, 0o600)
        // swift-system has no fsync.
        let synced = fsync(copy.rawValue) == 0
        let syncErrno = errno
        try? copy.close()
        if !synced {
            throw StoreError.io(
                operation: "fsync", path: copyPath, code: syncErrno, message: String(cString: strerror(syncErrno)))
        }
        if let directory = try? FileDescriptor.open(
            FilePath(toDirectory), .readOnly, options: [.directory, .closeOnExec])
        {
            _ = fsync(directory.rawValue)
            try? directory.close()
        }
    }

    /// Forces committed data to disk (`mdb_env_sync(…, 1)`), for environments opened with
    /// `sync: false`. A no-op when read-only.
    public func sync() throws(StoreError) {
        if options.readOnly { return }
        try withSharedLock { () throws(StoreError) in
            let code = mdb_env_sync(environment, 1)
            if code != 0 { throw StoreError(lmdbCode: code, operation: "sync", path: dataPath) }
        }
    }

    /// Map size, used size, readers and last transaction, as `mdb_stat -e`.
    public var info: LMDBInfo {
        resizeLock.lockShared()
        defer { resizeLock.unlock() }
        precondition(isOpen, "use of the closed LMDB environment \(dataPath)")
        var information = MDB_envinfo()
        mdb_env_info(environment, &information)
        return LMDBInfo(
            mapSizeBytes: information.me_mapsize,
            usedBytes: (information.me_last_pgno + 1) * pageSizeBytes,
            pageSizeBytes: pageSizeBytes,
            readersUsed: Int(information.me_numreaders),
            readersMax: Int(information.me_maxreaders),
            lastTransactionID: information.me_last_txnid)
    }

    /// The pages on LMDB's freelist (database 0), as `mdb_stat -f` counts them: freed pages
    /// waiting for reuse. Many of them after trims is normal; they are reused, not returned.
    public func freePages() throws -> Int {
        try read { transaction in
            // The freelist is database 0; each value is a page-number list whose first word is
            // its length.
            var cursor: OpaquePointer?
            let code = mdb_cursor_open(transaction.core.pointer, 0, &cursor)
            guard code == 0, let cursor else {
                throw StoreError(lmdbCode: code, operation: "cursor open (freelist)", path: dataPath)
            }
            defer { mdb_cursor_close(cursor) }
            var key = MDB_val()
            var value = MDB_val()
            var pages = 0
            var step = mdb_cursor_get(cursor, &key, &value, MDB_FIRST)
            while step == 0 {
                if let data = value.mv_data, value.mv_size >= MemoryLayout<Int>.size {
                    pages += data.loadUnaligned(as: Int.self)
                }
                step = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)
            }
            if step != MDB_NOTFOUND {
                throw StoreError(lmdbCode: step, operation: "cursor walk (freelist)", path: dataPath)
            }
            return pages
        }
    }

    /// The number of entries in `table`.
    public func entryCount(_ table: LMDBTable) throws -> Int {
        try read { transaction in try transaction.count(table) }
    }

    // MARK: - Transactions and the map

    private func core(_ pointer: OpaquePointer) -> LMDBTransactionCore {
        LMDBTransactionCore(
            pointer: pointer, dataPath: dataPath, environmentSerial: serial, keySizeMaxBytes: keySizeMaxBytes)
    }

    /// Begins a transaction and returns it with `resizeLock` held shared (the caller unlocks
    /// after ending the transaction), plus the map size it runs under.
    ///
    /// `MDB_MAP_RESIZED` (another process grew the map) is handled by adopting the new size and
    /// retrying; `MDB_READERS_FULL` by clearing dead processes' slots once and retrying.
    private func beginTransaction(readOnly: Bool) throws(StoreError) -> (OpaquePointer, mapSizeBytes: Int) {
        var readersChecked = false
        var mapAdoptions = 0
        while true {
            resizeLock.lockShared()
            precondition(isOpen, "use of the closed LMDB environment \(dataPath)")
            var pointer: OpaquePointer?
            let code = mdb_txn_begin(environment, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &pointer)
            if code == 0, let pointer { return (pointer, mapSizeBytes) }
            resizeLock.unlock()
            // Adopting takes one round; a few more cover another process growing again
            // meanwhile. Beyond that something is wrong, and looping would hang the caller.
            if code == MDB_MAP_RESIZED && mapAdoptions < 8 {
                mapAdoptions += 1
                try adoptMapSize()
            } else if code == MDB_READERS_FULL && !readersChecked {
                readersChecked = true
                var cleared: Int32 = 0
                _ = mdb_reader_check(environment, &cleared)
            } else {
                throw StoreError(lmdbCode: code, operation: "begin transaction", path: dataPath)
            }
        }
    }

    /// Adopts the larger map another process has set (`mdb_env_set_mapsize(env, 0)`).
    private func adoptMapSize() throws(StoreError) {
        resizeLock.lockExclusive()
        defer { resizeLock.unlock() }
        try setMapSize(0, operation: "adopt map size")
    }

    /// The largest map ordinary writes may grow to: `mapSizeMaxBytes` less the freeing reserve
    /// (at most a quarter of it), in whole pages; nil without a cap.
    private var ordinaryMapSizeMaxBytes: Int? {
        guard let capBytes = options.mapSizeMaxBytes else { return nil }
        let reserveBytes = min(max(0, options.freeingReserveBytes), capBytes / 4)
        return roundedDown(capBytes - reserveBytes)
    }

    /// Grows the map after a write found it full at `fullAtBytes`: by `mapGrowthBytes` or half
    /// the map, whichever is larger, capped by the (ordinary or freeing) cap and by the free
    /// disk space less the disk reserve (none for a freeing write). Runs with no transaction of
    /// this process active.
    private func growMap(fullAtBytes: Int, freeingSpace: Bool) throws(StoreError) {
        resizeLock.lockExclusive()
        defer { resizeLock.unlock() }
        precondition(isOpen, "use of the closed LMDB environment \(dataPath)")
        // Another thread may have grown it meanwhile; then just retry.
        if mapSizeBytes > fullAtBytes { return }
        let current = mapSizeBytes
        let step = max(options.mapGrowthBytes, current / 2)
        var target = roundedDown(current + step)
        if let capBytes = options.mapSizeMaxBytes, let ordinaryCap = ordinaryMapSizeMaxBytes {
            let cap = freeingSpace ? roundedDown(capBytes) : ordinaryCap
            if current >= cap {
                let reserveNote =
                    freeingSpace
                    ? "" : ", less \(roundedDown(capBytes) - ordinaryCap) kept for trims (write(freeingSpace: true))"
                throw StoreError.full(
                    "\(dataPath): the map is full at \(current) bytes, the configured maximum "
                        + "(mapSizeMaxBytes \(capBytes)\(reserveNote)); nothing of the transaction was written")
            }
            target = min(target, cap)
        }
        // The file grows only as pages are written, but at worst up to the map size: the disk
        // must have room for that, plus the reserve.
        let diskReserveBytes = freeingSpace ? 0 : options.diskReserveBytes
        var fileStatus = stat()
        let fileSizeBytes = stat(dataPath, &fileStatus) == 0 ? Int(fileStatus.st_size) : 0
        var fileSystem = statvfs()
        if statvfs(directory, &fileSystem) == 0 {
            let freeBytes = Int(fileSystem.f_bavail) * Int(fileSystem.f_frsize)
            let diskLimit = roundedDown(max(fileSizeBytes, current) + max(0, freeBytes - diskReserveBytes))
            if diskLimit <= current {
                throw StoreError.full(
                    "\(dataPath): the map is full at \(current) bytes and the disk has \(freeBytes) bytes free, "
                        + "\(diskReserveBytes) of which are kept in reserve; nothing of the transaction was written")
            }
            target = min(target, diskLimit)
        }
        try setMapSize(target, operation: "grow map to \(target) bytes")
        // Each rerun of a write must find a larger map, or the rerun loop would never end.
        if mapSizeBytes <= current {
            throw StoreError.io(
                operation: "grow map to \(target) bytes", path: dataPath, code: EINVAL,
                message: "the map stayed at \(mapSizeBytes) bytes")
        }
    }

    /// After a freeing write, takes the map back to the ordinary cap (LMDB keeps it at least as
    /// large as the pages in use), so ordinary writes cannot use up the trims' reserve.
    private func shrinkMapToOrdinaryCap() throws(StoreError) {
        guard let ordinaryCap = ordinaryMapSizeMaxBytes else { return }
        resizeLock.lockExclusive()
        defer { resizeLock.unlock() }
        guard mapSizeBytes > ordinaryCap else { return }
        try setMapSize(ordinaryCap, operation: "shrink map to \(ordinaryCap) bytes")
    }

    /// `mdb_env_set_mapsize`; the caller holds `resizeLock` exclusive.
    private func setMapSize(_ sizeBytes: Int, operation: String) throws(StoreError) {
        var code = mdb_env_set_mapsize(environment, sizeBytes)
        var information = MDB_envinfo()
        if code == 0 { code = mdb_env_info(environment, &information) }
        if code != 0 { throw StoreError(lmdbCode: code, operation: operation, path: dataPath) }
        mapSizeBytes = information.me_mapsize
    }

    private func roundedDown(_ bytes: Int) -> Int {
        bytes / pageSizeBytes * pageSizeBytes
    }

    private func withSharedLock<Result>(_ body: () throws(StoreError) -> Result) throws(StoreError) -> Result {
        resizeLock.lockShared()
        defer { resizeLock.unlock() }
        precondition(isOpen, "use of the closed LMDB environment \(dataPath)")
        return try body()
    }
}
