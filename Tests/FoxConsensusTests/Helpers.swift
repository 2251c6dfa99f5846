import FoxConsensusSimulation

@testable import FoxConsensus

/// A scripted DAG for committer tests: blocks built by (author, round, parent authors) and fed to
/// one node's core as messages.
struct DagScript {
    let keys: SimKeys
    var committee: Committee { keys.committee }
    var blocks: [Slot: [BlockRef]] = [:]
    var bytes: [BlockRef: [UInt8]] = [:]

    init(n: Int, fair: Bool = false, gcDepth: UInt64 = 5000, checkpointInterval: UInt64 = 1000) {
        keys = SimKeys(
            n: n, seed: 7,
            params: OrderingParameters(fairMode: fair, gcDepth: gcDepth, checkpointInterval: checkpointInterval),
            realCrypto: false)
    }

    /// Builds and signs a block of `author` at `round` whose round-1 parents are the first block
    /// of each listed author (genesis at round 1). `variant` makes equivocating twins differ.
    @discardableResult
    mutating func add(
        _ author: Int, _ round: UInt64, parents: [Int], variant: UInt64 = 0, ts: UInt64? = nil,
        payload: [Entry] = [], attestation: Checkpoint? = nil
    ) -> BlockRef {
        var refs: [BlockRef] = []
        for p in parents {
            if round == 1 {
                refs.append(committee.genesis[p])
            } else if let r = blocks[Slot(author: UInt16(p), round: round - 1)]?.first {
                refs.append(r)
            }
        }
        refs.sort()
        var b = Block(
            epoch: committee.epoch, round: round, author: UInt16(author), timestamp: ts ?? (round * 1000 + variant),
            parents: refs, payloadDigest: BlockCodec.payloadDigest(payload), attestation: attestation,
            payload: payload,
            signature: [])
        return record(&b)
    }

    /// Builds and signs a block with explicit parent refs (equivocation scripts).
    @discardableResult
    mutating func addRefs(
        _ author: Int, _ round: UInt64, refs: [BlockRef], variant: UInt64 = 0, ts: UInt64? = nil
    ) -> BlockRef {
        var b = Block(
            epoch: committee.epoch, round: round, author: UInt16(author), timestamp: ts ?? (round * 1000 + variant),
            parents: refs.sorted(), payloadDigest: BlockCodec.payloadDigest([]), attestation: nil, payload: [],
            signature: [])
        return record(&b)
    }

    /// Signs a block as its author and files it under its slot, with its encoding.
    private mutating func record(_ b: inout Block) -> BlockRef {
        b.signature = keys.signers[Int(b.author)].sign(b.digest)
        let ref = b.ref
        blocks[ref.slot, default: []].append(ref)
        bytes[ref] = BlockCodec.encode(b)
        return ref
    }

    /// The first block of (author, round).
    func at(_ author: Int, _ round: UInt64) -> BlockRef { blocks[Slot(author: UInt16(author), round: round)]![0] }

    /// Every block of rounds ≤ `round`.
    func upTo(_ round: UInt64) -> [BlockRef] { bytes.keys.filter { $0.round <= round }.sorted() }

    /// Adds a full round where every listed author references all `parents` authors.
    mutating func round(_ r: UInt64, authors: [Int], parents: [Int], attestation: Checkpoint? = nil) {
        for a in authors { add(a, r, parents: parents, attestation: attestation) }
    }

    func message(_ ref: BlockRef) -> [UInt8] { Message.block(bytes[ref]!).encode() }
}

/// Feeds script blocks to a core (node `me`) in round order and collects deliveries.
struct ScriptedNode {
    var core: ConsensusCore
    var deliveries: [Delivery] = []
    var outputs: [Output] = []
    init(_ s: DagScript, me: UInt16, local: LocalParameters = LocalParameters()) {
        core = ConsensusCore(
            config: CoreConfig(committee: s.committee, me: me, local: local), signer: s.keys.signers[Int(me)],
            verifier: s.keys.verifier, image: ScriptedNode.observer)
        _ = core.step(.start, now: 0)
    }
    /// Feeds blocks in (round, author, digest) order through the real receive path. A second
    /// block of a slot already held arrives as a fetched missing parent (section 5: only then is
    /// an equivocating block accepted).
    mutating func feed(_ s: DagScript, _ refs: [BlockRef]) {
        for r in refs.sorted() where !core.dag.contains(r) {
            let from = r.author == core.me ? UInt16((Int(core.me) + 1) % s.committee.n) : r.author
            var msg = s.message(r)
            if !core.dag.slot(r.slot).isEmpty {
                core.requested.insert(r)
                msg = Message.blocks([s.bytes[r]!]).encode()
            }
            let out = core.step(.message(from: from, bytes: msg), now: 1)
            outputs += out
            for o in out { if case .deliver(let d) = o { deliveries.append(d) } }
        }
    }
    /// Feeds blocks as one fetched sync response (one step, so one committer pass sees them all).
    mutating func feedBatch(_ s: DagScript, _ refs: [BlockRef], from: UInt16) {
        let list = refs.sorted().filter { !core.dag.contains($0) }
        for r in list { core.requested.insert(r) }
        let out = core.step(.message(from: from, bytes: Message.blocks(list.map { s.bytes[$0]! }).encode()), now: 1)
        outputs += out
        for o in out { if case .deliver(let d) = o { deliveries.append(d) } }
    }

    /// A store whose lastOwnRound is far ahead: the node only observes the scripted DAG (its own
    /// scripted blocks arrive from the network without tripping the stale-store check).
    static var observer: StoreImage {
        var img = StoreImage.fresh
        img.meta.lastOwnRound = 1_000_000
        return img
    }
    var leaders: [BlockRef] { deliveries.map { $0.subDag.leader } }
    var leaderRounds: [UInt64] { leaders.map(\.round) }
    var haltReason: String? { if case .halted(let why) = core.mode { return why } else { return nil } }
}
