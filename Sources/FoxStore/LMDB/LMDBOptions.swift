/// How an `LMDBEnvironment` is opened and how its map grows.
public struct LMDBOptions: Sendable, Equatable {
    /// The map size at open. An existing store keeps its larger map; the file itself only grows
    /// as pages are written.
    public var mapSizeBytes: Int
    /// The growth step when a write finds the map full: the map grows by this much or by half its
    /// size, whichever is larger (so growth stays rare as the store gets big).
    public var mapGrowthBytes: Int
    /// The map never grows beyond this (nil: bounded by the free disk space only). Ordinary writes
    /// throw `StoreError.full` already at `mapSizeMaxBytes - freeingReserveBytes`.
    public var mapSizeMaxBytes: Int?
    /// Reader slots in `lock.mdb`: every concurrent read transaction of every process holds one.
    public var readersMax: Int
    /// Named tables the environment can hold.
    public var tablesMax: Int
    /// True: every commit is durable when `write` returns (LMDB's default, two syncs). False adds
    /// `MDB_NOSYNC`: a system crash may lose or, on some file systems, corrupt recent commits.
    /// Only for throwaway nodes and tests.
    public var sync: Bool
    /// Open without writing anything: no directory is created, tables must exist, `write` fails.
    /// Used by `foxdump` while the node runs.
    public var readOnly: Bool
    /// Disk space that map growth leaves free for everything else (SQLite, logs, the OS). Writes
    /// that free space (`LMDBEnvironment.write(freeingSpace: true)`) may use it.
    public var diskReserveBytes: Int
    /// Room kept below `mapSizeMaxBytes` for writes that free space: ordinary writes are full at
    /// `mapSizeMaxBytes - freeingReserveBytes`, so a trim still finds pages to copy on write
    /// into. (Even a delete needs new pages in LMDB; with the map truly full nothing could be
    /// deleted any more.) At most a quarter of `mapSizeMaxBytes` is used.
    public var freeingReserveBytes: Int

    public init(
        mapSizeBytes: Int = 64 << 20,
        mapGrowthBytes: Int = 256 << 20,
        mapSizeMaxBytes: Int? = nil,
        readersMax: Int = 256,
        tablesMax: Int = 16,
        sync: Bool = true,
        readOnly: Bool = false,
        diskReserveBytes: Int = 64 << 20,
        freeingReserveBytes: Int = 8 << 20
    ) {
        self.mapSizeBytes = mapSizeBytes
        self.mapGrowthBytes = mapGrowthBytes
        self.mapSizeMaxBytes = mapSizeMaxBytes
        self.readersMax = readersMax
        self.tablesMax = tablesMax
        self.sync = sync
        self.readOnly = readOnly
        self.diskReserveBytes = diskReserveBytes
        self.freeingReserveBytes = freeingReserveBytes
    }
}
