/// Canonical encodings of what a node keeps on disk beside its blocks (section 9): the commit
/// records and the durable meta. Versioned, fixed-width big-endian, strict: a record decodes only
/// if it re-encodes to the same bytes, so a damaged one is found, never half-trusted.
public enum StorageCodec {
    static let commitVersion: UInt8 = 1
    static let metaVersion: UInt8 = 1

    /// The key of a block in the `blocks` table: (round, author, digest), big-endian, so the
    /// table's byte order is the refs' order.
    public static func blockKey(_ ref: BlockRef) -> [UInt8] {
        var w = ByteWriter()
        w.ref(ref)
        return w.bytes
    }

    public static func blockRef(key: [UInt8]) throws -> BlockRef {
        var r = ByteReader(key)
        let ref = try r.ref("blocks.key")
        try r.expectEnd("blocks.key")
        return ref
    }

    public static func encode(_ c: CommittedSubDag) -> [UInt8] {
        var w = ByteWriter()
        w.u8(commitVersion)
        w.u64(c.index)
        w.ref(c.leader)
        w.u32(UInt32(c.blocks.count))
        for r in c.blocks { w.ref(r) }
        w.digest(c.runningHash)
        w.u32(UInt32(c.pending.count))
        for r in c.pending { w.ref(r) }
        w.u32(UInt32(c.forcedCount))
        w.u64(c.commitTime)
        return w.bytes
    }

    public static func decodeCommit(_ bytes: [UInt8]) throws -> CommittedSubDag {
        var r = ByteReader(bytes)
        guard try r.u8("commit.version") == commitVersion else { throw DecodeError("commit.version") }
        let index = try r.u64("commit.index")
        let leader = try r.ref("commit.leader")
        func refs(_ field: String) throws -> [BlockRef] {
            let count = Int(try r.u32(field + ".count"))
            if count * BlockCodec.refBytes > r.remaining { throw DecodeError(field + ".count") }
            var out: [BlockRef] = []
            out.reserveCapacity(count)
            for _ in 0..<count { out.append(try r.ref(field)) }
            return out
        }
        let blocks = try refs("commit.blocks")
        let runningHash = try r.digest("commit.runningHash")
        let pending = try refs("commit.pending")
        let forced = Int(try r.u32("commit.forced"))
        let time = try r.u64("commit.time")
        try r.expectEnd("commit")
        let c = CommittedSubDag(
            index: index, leader: leader, blocks: blocks, runningHash: runningHash, pending: pending,
            forcedCount: forced, commitTime: time)
        if encode(c) != bytes { throw DecodeError("commit.canonical") }
        return c
    }

    public static func encode(_ m: StoredMeta) -> [UInt8] {
        var w = ByteWriter()
        w.u8(metaVersion)
        w.u64(m.lastOwnRound)
        if let d = m.lastOwnDigest {
            w.u8(1)
            w.digest(d)
        } else {
            w.u8(0)
        }
        w.u8(m.restored ? 1 : 0)
        return w.bytes
    }

    public static func decodeMeta(_ bytes: [UInt8]) throws -> StoredMeta {
        var r = ByteReader(bytes)
        guard try r.u8("meta.version") == metaVersion else { throw DecodeError("meta.version") }
        let round = try r.u64("meta.lastOwnRound")
        let digest = try r.presence("meta.lastOwnDigest") ? try r.digest("meta.lastOwnDigest") : nil
        let restored = try r.presence("meta.restored")
        try r.expectEnd("meta")
        return StoredMeta(lastOwnRound: round, lastOwnDigest: digest, restored: restored)
    }
}

extension StoreImage {
    /// What a host's store found on disk (blocks and commit records sorted).
    public static func found(
        initialized: Bool, meta: StoredMeta, blocks: [(BlockRef, [UInt8])], commits: [CommittedSubDag],
        snapshot: CoreSnapshot?
    ) -> StoreImage {
        StoreImage(initialized: initialized, meta: meta, blocks: blocks, commits: commits, snapshot: snapshot)
    }
}
