/// Ordering-relevant parameters: all of them are bound into `committeeDigest` (section 2).
public struct OrderingParameters: Hashable, Sendable {
    public var fairMode: Bool
    public var gcDepth: UInt64
    /// Fair readiness threshold; nil means 2f+1.
    public var readinessThreshold: Int?
    public var maxBlockBytes: Int
    /// nil means 2n.
    public var maxWeakLinks: Int?
    /// Checkpoint interval K (commits).
    public var checkpointInterval: UInt64
    /// H: held-back entries per origin.
    public var maxHeldBack: Int

    public init(
        fairMode: Bool = true, gcDepth: UInt64 = 5000, readinessThreshold: Int? = nil,
        maxBlockBytes: Int = 1 << 20, maxWeakLinks: Int? = nil, checkpointInterval: UInt64 = 100,
        maxHeldBack: Int = 10_000
    ) {
        self.fairMode = fairMode; self.gcDepth = gcDepth; self.readinessThreshold = readinessThreshold
        self.maxBlockBytes = maxBlockBytes; self.maxWeakLinks = maxWeakLinks
        self.checkpointInterval = checkpointInterval; self.maxHeldBack = maxHeldBack
    }
}

/// The static committee of one epoch: keys in sorted order, thresholds, leader schedule.
public struct Committee: Sendable {
    public static let protocolVersion: UInt8 = 1

    public let epoch: UInt64
    /// SubjectPublicKeyInfo DER (or any canonical key bytes), sorted by unsigned byte order.
    public let publicKeys: [[UInt8]]
    public let params: OrderingParameters
    public let n: Int
    public let f: Int
    /// Q = n − f.
    public let quorum: Int
    /// V = f + 1.
    public let validity: Int
    public let readiness: Int
    public let maxWeakLinks: Int
    public let digest: Digest
    public let epochSeed: UInt64
    public let genesis: [BlockRef]

    /// `keys` in any order; they are sorted here and author index = position.
    public init(epoch: UInt64, keys: [[UInt8]], params: OrderingParameters) {
        precondition(!keys.isEmpty && keys.count <= Int(UInt16.max), "committee size")
        let sorted = keys.sorted { $0.lexicographicallyPrecedes($1) }
        precondition(Set(sorted).count == sorted.count, "duplicate committee key")
        self.epoch = epoch
        self.publicKeys = sorted
        self.params = params
        n = sorted.count
        f = (n - 1) / 3
        quorum = n - f
        validity = f + 1
        readiness = params.readinessThreshold ?? (2 * f + 1)
        maxWeakLinks = params.maxWeakLinks ?? (2 * n)
        precondition(readiness >= 1 && readiness <= n, "readiness threshold")
        precondition(quorum >= 1 && 2 * quorum - n >= f + 1 || n <= 3, "quorum intersection")

        var w = ByteWriter()
        w.raw(Array("foxmq/committee/v1".utf8))
        w.u64(epoch)
        w.u32(UInt32(n))
        for k in sorted { w.lengthPrefixed(k) }
        w.u8(Committee.protocolVersion)
        w.u8(params.fairMode ? 1 : 0)
        w.u64(params.gcDepth)
        w.u32(UInt32(readiness))
        w.u64(UInt64(params.maxBlockBytes))
        w.u32(UInt32(maxWeakLinks))
        w.u64(params.checkpointInterval)
        w.u64(UInt64(params.maxHeldBack))
        let d = Digest.sha256(w.bytes)
        digest = d
        epochSeed = d.w0
        var g: [BlockRef] = []
        for a in 0..<n {
            var gw = ByteWriter()
            gw.raw(BlockCodec.genesisDomain); gw.u64(epoch); gw.u16(UInt16(a)); gw.digest(d)
            g.append(BlockRef(round: 0, author: UInt16(a), digest: Digest.sha256(gw.bytes)))
        }
        genesis = g
    }

    /// leader(r) = committee[(r mod n + epochSeed mod n) mod n], r ≥ 1.
    public func leader(_ round: UInt64) -> UInt16 {
        let nn = UInt64(n)
        return UInt16((round % nn + epochSeed % nn) % nn)
    }

    public func index(ofKey key: [UInt8]) -> UInt16? {
        publicKeys.firstIndex(of: key).map { UInt16($0) }
    }

    /// Max encoded entry (ingress limit).
    public var maxEntryBytes: Int { params.maxBlockBytes - 64 }
    /// Rule 5 bound on parents.
    public var maxParents: Int { n + 1 + maxWeakLinks }
}

/// Local (not ordering-relevant) timers and limits. Times are nanoseconds of the local clock.
public struct LocalParameters: Sendable {
    public var leaderTimeoutBase: UInt64 = 250_000_000
    public var leaderTimeoutMax: UInt64 = 1_000_000_000
    public var minRoundInterval: UInt64 = 1_000_000
    public var heartbeat: UInt64 = 500_000_000
    /// Re-request missing parents / re-announce status after this long.
    public var syncInterval: UInt64 = 100_000_000
    public var recoveryRetry: UInt64 = 200_000_000
    public var maxSuspendedBytes: Int = 8 << 20
    public var maxSuspendedBytesPerAuthor: Int = 2 << 20
    public var maxSuspendedBlocks: Int = 4096
    /// Blocks per sync response.
    public var maxBlocksPerResponse: Int = 64
    /// Bytes of blocks per sync response (beyond the first block): a response must stay far
    /// below the transport's frame bound whatever the blocks hold.
    public var maxResponseBytes: Int = 8 << 20
    /// Refs per fetch request.
    public var maxRefsPerFetch: Int = 64
    /// Pending client bytes (backpressure: submit is refused beyond it).
    public var maxPendingBytes: Int = 16 << 20
    public var maxPendingEntries: Int = 100_000
    public var maxEvidence: Int = 1024
    /// The host hands the core its application-state snapshot after each checkpoint commit
    /// (`Input.appSnapshot`); the checkpoint's stateDigest covers it and state sync (10.3)
    /// transfers it. Off: the application state is empty bytes.
    public var appSnapshots: Bool = false
    public init() {}
}
