/// The state of an environment, as `mdb_stat -e` shows it (for `foxdump info` and metrics).
public struct LMDBInfo: Sendable, Equatable {
    /// The current map size: the most `data.mdb` can hold before the map grows.
    public var mapSizeBytes: Int
    /// The pages in use up to the last one (`(last page + 1) × page size`), free pages included.
    public var usedBytes: Int
    public var pageSizeBytes: Int
    /// The most reader slots ever in use at once since `lock.mdb` was created (LMDB keeps a high
    /// water mark, not a live count).
    public var readersUsed: Int
    public var readersMax: Int
    /// The ID of the last committed write transaction (grows by one per commit).
    public var lastTransactionID: Int

    public init(
        mapSizeBytes: Int, usedBytes: Int, pageSizeBytes: Int, readersUsed: Int, readersMax: Int,
        lastTransactionID: Int
    ) {
        self.mapSizeBytes = mapSizeBytes
        self.usedBytes = usedBytes
        self.pageSizeBytes = pageSizeBytes
        self.readersUsed = readersUsed
        self.readersMax = readersMax
        self.lastTransactionID = lastTransactionID
    }
}

/// One table's size, as `mdb_stat -s TABLE` gives it.
public struct LMDBTableStatistics: Sendable, Equatable {
    public var entries: Int
    /// Branch, leaf and overflow pages, times the page size.
    public var bytes: Int
}
