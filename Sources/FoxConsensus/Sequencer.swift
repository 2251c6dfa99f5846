/// The per-origin sequencer (section 13): replicated state applied in log order before the MQTT
/// apply. Restores each origin's submission order, drops copies and stale incarnations, and
/// abandons a gap once more than H entries are held back.
public struct Sequencer: Hashable, Sendable {
    public struct Origin: Hashable, Sendable {
        public var incarnation: UInt64 = 0
        public var nextSeq: UInt64 = 0
        /// Sorted by seq, unique seqs, at most H + 1 entries.
        public var heldBack: [Entry] = []
    }

    public private(set) var origins: [Origin]
    public let maxHeldBack: Int
    public private(set) var dropped: UInt64 = 0
    public private(set) var abandonedGaps: UInt64 = 0

    public init(n: Int, maxHeldBack: Int) {
        precondition(maxHeldBack >= 1)
        origins = Array(repeating: Origin(), count: n)
        self.maxHeldBack = maxHeldBack
    }

    /// Applies one entry in log order; returns the entries applied now, in order.
    public mutating func apply(_ e: Entry) -> [Entry] {
        let o = Int(e.id.origin)
        guard o < origins.count else { dropped += 1; return [] }
        var s = origins[o]
        defer { origins[o] = s }
        if e.id.incarnation < s.incarnation { dropped += 1; return [] }
        if e.id.incarnation > s.incarnation {
            s.heldBack = []; s.incarnation = e.id.incarnation; s.nextSeq = 0
        }
        if e.id.seq < s.nextSeq { dropped += 1; return [] }
        var out: [Entry] = []
        if e.id.seq == s.nextSeq {
            out.append(e); s.nextSeq += 1
            Sequencer.drain(&s, into: &out)
        } else {
            let idx = s.heldBack.firstIndex { $0.id.seq >= e.id.seq } ?? s.heldBack.count
            if idx < s.heldBack.count && s.heldBack[idx].id.seq == e.id.seq { dropped += 1; return [] }
            s.heldBack.insert(e, at: idx)
            if s.heldBack.count > maxHeldBack {
                abandonedGaps += 1
                s.nextSeq = s.heldBack[0].id.seq
                Sequencer.drain(&s, into: &out)
            }
        }
        assert(s.heldBack.count <= maxHeldBack)
        return out
    }

    static func drain(_ s: inout Origin, into out: inout [Entry]) {
        while let first = s.heldBack.first, first.id.seq == s.nextSeq {
            out.append(first); s.heldBack.removeFirst(); s.nextSeq += 1
        }
    }

    public func encode(into w: inout ByteWriter) {
        w.u32(UInt32(origins.count))
        for s in origins {
            w.u64(s.incarnation); w.u64(s.nextSeq)
            BlockCodec.encodePayload(s.heldBack, into: &w)
        }
    }

    public static func decode(_ r: inout ByteReader, maxHeldBack: Int, maxEntryBytes: Int) throws -> Sequencer {
        let n = Int(try r.u32("sequencer.n"))
        if n > Int(UInt16.max) { throw DecodeError("sequencer.n") }
        var s = Sequencer(n: n, maxHeldBack: maxHeldBack)
        for i in 0..<n {
            var o = Origin()
            o.incarnation = try r.u64("sequencer.inc"); o.nextSeq = try r.u64("sequencer.nextSeq")
            let c = Int(try r.u32("sequencer.held.count"))
            if c > maxHeldBack { throw DecodeError("sequencer.held.count") }
            for _ in 0..<c {
                let id = EntryID(
                    origin: try r.u16("e.origin"), incarnation: try r.u64("e.inc"), seq: try r.u64("e.seq"))
                let kind = try r.u8("e.kind"); let body = try r.lengthPrefixed(max: maxEntryBytes, "e.body")
                o.heldBack.append(Entry(id: id, kind: kind, body: body))
            }
            s.origins[i] = o
        }
        return s
    }
}
