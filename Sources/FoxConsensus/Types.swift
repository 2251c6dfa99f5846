/// (round, author, digest), ordered by that triple (design section 3).
public struct BlockRef: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var round: UInt64
    public var author: UInt16
    public var digest: Digest

    public init(round: UInt64, author: UInt16, digest: Digest) {
        self.round = round; self.author = author; self.digest = digest
    }

    public static func < (a: BlockRef, b: BlockRef) -> Bool {
        if a.round != b.round { return a.round < b.round }
        if a.author != b.author { return a.author < b.author }
        return a.digest < b.digest
    }

    public var slot: Slot { Slot(author: author, round: round) }
    public var description: String { "\(author)@\(round):\(digest)" }
}

/// One (author, round) position of the DAG.
public struct Slot: Hashable, Comparable, Sendable {
    public var author: UInt16
    public var round: UInt64
    public init(author: UInt16, round: UInt64) { self.author = author; self.round = round }
    public static func < (a: Slot, b: Slot) -> Bool { a.round != b.round ? a.round < b.round : a.author < b.author }
}

/// (origin, incarnation, seq): unique per entry; the sequencer (section 13) orders by it per origin.
public struct EntryID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var origin: UInt16
    public var incarnation: UInt64
    public var seq: UInt64
    public init(origin: UInt16, incarnation: UInt64, seq: UInt64) {
        self.origin = origin; self.incarnation = incarnation; self.seq = seq
    }
    public static func < (a: EntryID, b: EntryID) -> Bool {
        if a.origin != b.origin { return a.origin < b.origin }
        if a.incarnation != b.incarnation { return a.incarnation < b.incarnation }
        return a.seq < b.seq
    }
    public var description: String { "\(origin).\(incarnation).\(seq)" }
}

public struct Entry: Hashable, Sendable {
    public var id: EntryID
    public var kind: UInt8
    public var body: [UInt8]
    public init(id: EntryID, kind: UInt8, body: [UInt8]) { self.id = id; self.kind = kind; self.body = body }
    /// Encoded size: origin 2 + incarnation 8 + seq 8 + kind 1 + length 4 + body.
    public var encodedSize: Int { 23 + body.count }
}

/// C_k (section 10.3).
public struct Checkpoint: Hashable, Sendable {
    public var commitIndex: UInt64
    public var runningHash: Digest
    public var stateDigest: Digest
    public var leaderRound: UInt64
    public init(commitIndex: UInt64, runningHash: Digest, stateDigest: Digest, leaderRound: UInt64) {
        self.commitIndex = commitIndex; self.runningHash = runningHash
        self.stateDigest = stateDigest; self.leaderRound = leaderRound
    }
}

/// A signed DAG vertex (section 3). `digest` covers the header (every field but payload and
/// signature); `payloadDigest` binds the payload.
public struct Block: Hashable, Sendable {
    public var epoch: UInt64
    public var round: UInt64
    public var author: UInt16
    public var timestamp: UInt64
    public var parents: [BlockRef]
    public var payloadDigest: Digest
    public var attestation: Checkpoint?
    public var payload: [Entry]
    public var signature: [UInt8]

    public init(
        epoch: UInt64, round: UInt64, author: UInt16, timestamp: UInt64, parents: [BlockRef],
        payloadDigest: Digest, attestation: Checkpoint?, payload: [Entry], signature: [UInt8]
    ) {
        self.epoch = epoch; self.round = round; self.author = author; self.timestamp = timestamp
        self.parents = parents; self.payloadDigest = payloadDigest; self.attestation = attestation
        self.payload = payload; self.signature = signature
    }

    /// SHA-256("foxmq/block/v1" ‖ encode(header)).
    public var digest: Digest {
        var h = Hashing()
        h.update(BlockCodec.digestDomain)
        h.update(BlockCodec.encodeHeader(self))
        return h.finalize()
    }

    public var ref: BlockRef { BlockRef(round: round, author: author, digest: digest) }
}

/// The output of one commit (section 3).
public struct CommittedSubDag: Hashable, Sendable {
    public var index: UInt64
    public var leader: BlockRef
    public var blocks: [BlockRef]
    public var runningHash: Digest
    public var pending: [BlockRef]
    /// Blocks emitted by forced emission (section 7 step 2); a metric, part of `blocks`.
    public var forcedCount: Int
    public var commitTime: UInt64
    public init(
        index: UInt64, leader: BlockRef, blocks: [BlockRef], runningHash: Digest, pending: [BlockRef],
        forcedCount: Int, commitTime: UInt64
    ) {
        self.index = index; self.leader = leader; self.blocks = blocks; self.runningHash = runningHash
        self.pending = pending; self.forcedCount = forcedCount; self.commitTime = commitTime
    }
}

/// Evidence of an equivocation: two different signed headers for one slot.
public struct EquivocationEvidence: Hashable, Sendable {
    public var slot: Slot
    public var first: Digest
    public var second: Digest
}
