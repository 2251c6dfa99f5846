/// A block held in the local DAG. `bytes` serves sync until the block is emitted; then the
/// encoded bytes and the decoded payload are dropped (the header stays; the store serves the
/// block, section 11).
public struct DagBlock: Sendable {
    public var block: Block
    public let ref: BlockRef
    public var bytes: [UInt8]
    public var isGenesis: Bool { ref.round == 0 }
}

/// The local DAG above the horizon. Causally complete: every parent is present or below the
/// horizon. Lookups only; anything ordered goes through sorted arrays, never dictionary order.
public struct Dag: Sendable {
    public private(set) var blocks: [BlockRef: DagBlock] = [:]
    /// Sorted refs per round.
    public private(set) var byRound: [UInt64: [BlockRef]] = [:]
    /// Refs per slot, in arrival order (the first is the one this node references).
    public private(set) var slots: [Slot: [BlockRef]] = [:]
    public private(set) var highestRound: UInt64 = 0
    /// Highest round held per author.
    public private(set) var latestRound: [UInt64]
    /// Rounds below this were dropped.
    public private(set) var lowestRound: UInt64 = 0
    public private(set) var headerBytes: Int = 0
    public private(set) var payloadBytes: Int = 0

    public init(n: Int) { latestRound = Array(repeating: 0, count: n) }

    public func contains(_ r: BlockRef) -> Bool { blocks[r] != nil }
    public subscript(_ r: BlockRef) -> DagBlock? { blocks[r] }
    public func refs(at round: UInt64) -> [BlockRef] { byRound[round] ?? [] }
    public func slot(_ s: Slot) -> [BlockRef] { slots[s] ?? [] }
    public var count: Int { blocks.count }

    /// Distinct authors holding a block at `round`.
    public func authorCount(at round: UInt64) -> Int {
        var c = 0; var last: UInt16? = nil
        for r in refs(at: round) where r.author != last { c += 1; last = r.author }
        return c
    }

    public mutating func insert(_ b: Block, ref: BlockRef, bytes: [UInt8]) {
        precondition(blocks[ref] == nil, "double insert")
        blocks[ref] = DagBlock(block: b, ref: ref, bytes: bytes)
        var list = byRound[ref.round] ?? []
        let idx = list.firstIndex { $0 > ref } ?? list.count
        list.insert(ref, at: idx)
        byRound[ref.round] = list
        slots[ref.slot, default: []].append(ref)
        if ref.round > highestRound { highestRound = ref.round }
        if Int(ref.author) < latestRound.count, ref.round > latestRound[Int(ref.author)] {
            latestRound[Int(ref.author)] = ref.round
        }
        headerBytes += 64 + b.parents.count * BlockCodec.refBytes
        payloadBytes += bytes.count
    }

    /// Drops the encoded bytes and the decoded payload of an emitted block (memory bound,
    /// section 11: payload bytes only until the block is emitted).
    public mutating func dropPayload(_ r: BlockRef) {
        guard var d = blocks[r], !d.block.payload.isEmpty || !d.bytes.isEmpty else { return }
        payloadBytes -= d.bytes.count
        d.block.payload = []
        d.bytes = []
        blocks[r] = d
    }

    /// Drops every round below `round`; returns the dropped refs in sorted order.
    @discardableResult
    public mutating func prune(below round: UInt64) -> [BlockRef] {
        guard round > lowestRound else { return [] }
        var dropped: [BlockRef] = []
        var r = lowestRound
        while r < round {
            for ref in byRound[r] ?? [] {
                if let d = blocks[ref] {
                    headerBytes -= 64 + d.block.parents.count * BlockCodec.refBytes
                    payloadBytes -= d.bytes.count
                }
                blocks[ref] = nil
                slots[ref.slot] = nil
                dropped.append(ref)
            }
            byRound[r] = nil
            r += 1
            if byRound.isEmpty { break }
        }
        lowestRound = round
        return dropped
    }

    /// history(from) ∩ {round ≥ floor}, stopping at blocks for which `stop` holds.
    public func history(from roots: [BlockRef], floor: UInt64, stop: (BlockRef) -> Bool = { _ in false }) -> Set<
        BlockRef
    > {
        var seen = Set<BlockRef>()
        var stack: [BlockRef] = []
        for r in roots where r.round >= floor && blocks[r] != nil && !stop(r) {
            if seen.insert(r).inserted { stack.append(r) }
        }
        while let r = stack.popLast() {
            guard let d = blocks[r] else { continue }
            for p in d.block.parents where p.round >= floor && blocks[p] != nil && !stop(p) {
                if seen.insert(p).inserted { stack.append(p) }
            }
        }
        return seen
    }
}
