@testable import FoxConsensus

/// `consensus`: the decoders of FoxConsensus, what a peer's messages and the node's own
/// consensus tables reach. All of them are strict (a value decodes only from its one canonical
/// encoding), so what decodes must re-encode to exactly the input, and decode again to the same
/// value. The selector byte picks the decoder (low 3 bits) and, for snapshots, the committee size
/// (1, 2 or 4 members, bits 3-4):
///
/// - 0: `Message.decode` (and the blocks and snapshot it carries, with their decoders);
/// - 1: `BlockCodec.decode`;
/// - 2, 3, 4: `StorageCodec.decodeCommit`, `decodeMeta`, `blockRef(key:)`;
/// - 5: `CoreSnapshot.decode`; 6: `SyncAnchor.decode`; 7: `Sequencer.decode`.
let consensusHarness = Harness(
    name: "consensus",
    summary: "consensus messages, blocks, commit records, meta, snapshots, anchors: decode is canonical",
    run: fuzzConsensus, seeds: consensusSeeds)

/// Committees of 1, 2 and 4 members with the default parameters (1 MiB blocks, H = 10,000).
let fuzzCommittees: [Committee] = [1, 2, 4].map { size in
    Committee(epoch: 0, keys: (0..<size).map { [UInt8($0), 0xFE] }, params: OrderingParameters())
}

@Sendable func fuzzConsensus(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let selector = input.byte()
    let committee = fuzzCommittees[Int(selector >> 3) % fuzzCommittees.count]
    let rest = input.rest()
    switch selector & 0x07 {
    case 0:
        guard let message = try? Message.decode(rest, maxBlockBytes: committee.params.maxBlockBytes) else { return }
        require(message.encode() == rest, "consensus: \(message) is not its canonical encoding")
        require(
            (try? Message.decode(message.encode(), maxBlockBytes: committee.params.maxBlockBytes)) == message,
            "consensus: \(message) does not decode from its encoding")
        switch message {
        case .block(let block): checkBlock(block, committee)
        case .blocks(let blocks): for block in blocks { checkBlock(block, committee) }
        case .recoverAnswer(_, let block?): checkBlock(block, committee)
        case .stateResponse(let snapshot, let proof):
            checkSnapshot(snapshot, committee)
            for block in proof { checkBlock(block, committee) }
        default: break
        }
    case 1:
        checkBlock(rest, committee)
    case 2:
        guard let commit = try? StorageCodec.decodeCommit(rest) else { return }
        require(StorageCodec.encode(commit) == rest, "consensus: commit \(commit.index) is not canonical")
        require((try? StorageCodec.decodeCommit(StorageCodec.encode(commit))) == commit, "consensus: commit round trip")
    case 3:
        guard let meta = try? StorageCodec.decodeMeta(rest) else { return }
        require(StorageCodec.encode(meta) == rest, "consensus: \(meta) is not canonical")
        require((try? StorageCodec.decodeMeta(StorageCodec.encode(meta))) == meta, "consensus: meta round trip")
    case 4:
        guard let ref = try? StorageCodec.blockRef(key: rest) else { return }
        require(StorageCodec.blockKey(ref) == rest, "consensus: the block key of \(ref) is not canonical")
    case 5:
        checkSnapshot(rest, committee)
    case 6:
        guard let anchor = try? SyncAnchor.decode(rest) else { return }
        require(anchor.encode() == rest, "consensus: the anchor is not canonical")
        require((try? SyncAnchor.decode(anchor.encode())) == anchor, "consensus: anchor round trip")
    default:
        var reader = ByteReader(rest)
        guard
            let sequencer = try? Sequencer.decode(
                &reader, maxHeldBack: committee.params.maxHeldBack, maxEntryBytes: committee.maxEntryBytes)
        else { return }
        var writer = ByteWriter()
        sequencer.encode(into: &writer)
        require(
            writer.bytes == Array(rest[0..<reader.offset]), "consensus: the sequencer's encoding is not what it read")
    }
}

private func checkBlock(_ bytes: [UInt8], _ committee: Committee) {
    guard
        let block = try? BlockCodec.decode(
            bytes, maxParents: committee.maxParents, maxBlockBytes: committee.params.maxBlockBytes,
            maxEntryBytes: committee.maxEntryBytes)
    else { return }
    let encoded = BlockCodec.encode(block)
    require(encoded == bytes, "consensus: block \(block.ref) is not its canonical encoding")
    let again = try? BlockCodec.decode(
        encoded, maxParents: committee.maxParents, maxBlockBytes: committee.params.maxBlockBytes,
        maxEntryBytes: committee.maxEntryBytes)
    require(again == block, "consensus: block \(block.ref) does not decode from its encoding")
}

private func checkSnapshot(_ bytes: [UInt8], _ committee: Committee) {
    guard let snapshot = try? CoreSnapshot.decode(bytes, committee: committee) else { return }
    let encoded = snapshot.encode()
    require(encoded == bytes, "consensus: snapshot \(snapshot.commitIndex) is not its canonical encoding")
    require(
        (try? CoreSnapshot.decode(encoded, committee: committee)) == snapshot,
        "consensus: snapshot \(snapshot.commitIndex) does not decode from its encoding")
    if let anchor = snapshot.anchor {
        require((try? SyncAnchor.decode(anchor.encode())) == anchor, "consensus: the snapshot's anchor round trip")
    }
}

@Sendable func consensusSeeds() -> [Seed] {
    func digest(_ byte: UInt8) -> Digest { Digest.sha256([byte]) }
    let committee = fuzzCommittees[2]
    let genesis = committee.genesis
    let entries = [
        Entry(id: EntryID(origin: 0, incarnation: 1, seq: 0), kind: 1, body: Array("event".utf8)),
        Entry(id: EntryID(origin: 3, incarnation: 2, seq: 7), kind: 2, body: []),
    ]
    let checkpoint = Checkpoint(commitIndex: 100, runningHash: digest(1), stateDigest: digest(2), leaderRound: 40)
    let block = Block(
        epoch: 0, round: 1, author: 2, timestamp: 1_700_000_000_000, parents: genesis,
        payloadDigest: BlockCodec.payloadDigest(entries), attestation: nil, payload: entries,
        signature: [UInt8](repeating: 0x5A, count: BlockCodec.signatureBytes))
    let attesting = Block(
        epoch: 0, round: 2, author: 0, timestamp: 1_700_000_000_500, parents: [block.ref] + genesis.prefix(2),
        payloadDigest: BlockCodec.payloadDigest([]), attestation: checkpoint, payload: [],
        signature: [UInt8](repeating: 0xA5, count: BlockCodec.signatureBytes))
    let blockBytes = BlockCodec.encode(block)
    let attestingBytes = BlockCodec.encode(attesting)
    let anchor = SyncAnchor(
        seed: digest(3),
        records: [
            AnchorRecord(leader: block.ref, blocks: [block.ref]),
            AnchorRecord(leader: attesting.ref, blocks: [attesting.ref, block.ref]),
        ])
    var sequencer = Sequencer(n: committee.n, maxHeldBack: committee.params.maxHeldBack)
    for entry in entries + [Entry(id: EntryID(origin: 1, incarnation: 1, seq: 5), kind: 1, body: [9])] {
        _ = sequencer.apply(entry)
    }
    let snapshot = CoreSnapshot(
        commitIndex: 100, leaderRound: 40, runningHash: digest(1), commitTime: 1_700_000_000_000,
        pending: [block.ref].sorted(), emitted: [attesting.ref, block.ref].sorted(), sequencer: sequencer,
        checkpoint: checkpoint, app: Array("app state".utf8), anchor: anchor, rebuildEmitted: false)
    let snapshotBytes = snapshot.encode()
    let commit = CommittedSubDag(
        index: 7, leader: attesting.ref, blocks: [block.ref, attesting.ref], runningHash: digest(4),
        pending: [block.ref], forcedCount: 1, commitTime: 1_700_000_001_000)
    let committeeOf4: UInt8 = 2 << 3
    var sequencerWriter = ByteWriter()
    sequencer.encode(into: &sequencerWriter)
    let messages: [(String, Message)] = [
        ("block", .block(blockBytes)),
        ("blocks", .blocks([blockBytes, attestingBytes])),
        ("fetch", .fetch([block.ref, attesting.ref])),
        ("status", .status([3, 1, 0, 2])),
        ("recover-query", .recoverQuery),
        ("recover-answer", .recoverAnswer(lastOwnRound: 9, block: blockBytes)),
        ("recover-answer-empty", .recoverAnswer(lastOwnRound: 0, block: nil)),
        ("state-request", .stateRequest(commitIndex: 99)),
        ("state-response", .stateResponse(snapshot: snapshotBytes, proof: [attestingBytes])),
    ]
    var seeds = messages.map { Seed("message-" + $0.0, [committeeOf4 | 0] + $0.1.encode()) }
    seeds += [
        Seed("block", [committeeOf4 | 1] + blockBytes),
        Seed("block-attesting", [committeeOf4 | 1] + attestingBytes),
        Seed("commit", [2] + StorageCodec.encode(commit)),
        Seed("meta", [3] + StorageCodec.encode(StoredMeta(lastOwnRound: 5, lastOwnDigest: digest(5), restored: true))),
        Seed("meta-empty", [3] + StorageCodec.encode(StoredMeta(lastOwnRound: 0, lastOwnDigest: nil, restored: false))),
        Seed("block-key", [4] + StorageCodec.blockKey(block.ref)),
        Seed("snapshot", [committeeOf4 | 5] + snapshotBytes),
        Seed("anchor", [6] + anchor.encode()),
        Seed("sequencer", [committeeOf4 | 7] + sequencerWriter.bytes),
    ]
    return seeds
}
