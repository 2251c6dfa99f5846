/// Consensus wire messages, format v1: version ‖ type ‖ body. Blocks are protected by their
/// signature, digest and strict decoding; the unsigned control messages carry a 4-byte SHA-256
/// check, standing for the transport's integrity check, so a flipped bit cannot forge a round.
public enum Message: Equatable, Sendable {
    /// An unsolicited block (broadcast of a new own block, or a re-broadcast).
    case block([UInt8])
    /// A sync response: blocks fetched by ref or pushed after a status.
    case blocks([[UInt8]])
    /// Pull: missing refs.
    case fetch([BlockRef])
    /// The highest round held per author; a peer behind on some author gets those blocks pushed.
    case status([UInt64])
    /// Amnesia recovery (10.4).
    case recoverQuery
    /// (b) the answerer's lastOwnRound, (a) the highest block it holds authored by the asker.
    case recoverAnswer(lastOwnRound: UInt64, block: [UInt8]?)
    /// State sync (10.3): "I am at commit index k; send a newer proven checkpoint".
    case stateRequest(commitIndex: UInt64)
    /// An encoded `CoreSnapshot` (with C_k, the application snapshot and the `SyncAnchor`:
    /// commit records k−1 and k, chained to runningHash_k) and the proof: V signed blocks of
    /// distinct authors attesting C_k. Verified by the receiver.
    case stateResponse(snapshot: [UInt8], proof: [[UInt8]])

    public static let version: UInt8 = 1
    static let maxBlocks = 1024
    static let maxRefs = 4096
    public static let maxSnapshotBytes = 256 << 20

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.u8(Message.version)
        switch self {
        case .block(let b): w.u8(1); w.lengthPrefixed(b)
        case .blocks(let bs):
            w.u8(2); w.u16(UInt16(bs.count)); for b in bs { w.lengthPrefixed(b) }
        case .fetch(let refs):
            w.u8(3); w.u16(UInt16(refs.count)); for r in refs { w.ref(r) }
            Message.appendCheck(&w)
        case .status(let rounds):
            w.u8(4); w.u16(UInt16(rounds.count)); for r in rounds { w.u64(r) }
            Message.appendCheck(&w)
        case .recoverQuery:
            w.u8(5); Message.appendCheck(&w)
        case .recoverAnswer(let last, let block):
            w.u8(6); w.u64(last)
            if let b = block { w.u8(1); w.lengthPrefixed(b) } else { w.u8(0) }
            Message.appendCheck(&w)
        case .stateRequest(let k):
            w.u8(7); w.u64(k); Message.appendCheck(&w)
        case .stateResponse(let snap, let proof):
            w.u8(8); w.lengthPrefixed(snap); w.u16(UInt16(proof.count)); for b in proof { w.lengthPrefixed(b) }
        }
        return w.bytes
    }

    static func appendCheck(_ w: inout ByteWriter) {
        let d = Digest.sha256(w.bytes)
        w.u32(UInt32(truncatingIfNeeded: d.w0 >> 32))
    }

    public static func decode(_ bytes: [UInt8], maxBlockBytes: Int) throws -> Message {
        var r = ByteReader(bytes)
        guard try r.u8("message.version") == version else { throw DecodeError("message.version") }
        let type = try r.u8("message.type")
        let limit = maxBlockBytes + 1 << 16
        func check(_ r: inout ByteReader) throws {
            let bodyEnd = r.offset
            let want = try r.u32("message.check")
            try r.expectEnd("message")
            let d = Digest.sha256(Array(bytes[0..<bodyEnd]))
            if UInt32(truncatingIfNeeded: d.w0 >> 32) != want { throw DecodeError("message.check") }
        }
        switch type {
        case 1:
            let b = try r.lengthPrefixed(max: limit, "block"); try r.expectEnd("message")
            return .block(b)
        case 2:
            let c = Int(try r.u16("blocks.count")); if c > maxBlocks { throw DecodeError("blocks.count") }
            var out: [[UInt8]] = []
            for _ in 0..<c { out.append(try r.lengthPrefixed(max: limit, "blocks")) }
            try r.expectEnd("message")
            return .blocks(out)
        case 3:
            let c = Int(try r.u16("fetch.count")); if c > maxRefs { throw DecodeError("fetch.count") }
            var out: [BlockRef] = []
            for _ in 0..<c { out.append(try r.ref("fetch.ref")) }
            try check(&r)
            return .fetch(out)
        case 4:
            let c = Int(try r.u16("status.count")); if c > Int(UInt16.max) { throw DecodeError("status.count") }
            var out: [UInt64] = []
            for _ in 0..<c { out.append(try r.u64("status.round")) }
            try check(&r)
            return .status(out)
        case 5:
            try check(&r); return .recoverQuery
        case 6:
            let last = try r.u64("recover.lastOwnRound")
            var b: [UInt8]? = nil
            if try r.presence("recover.block") { b = try r.lengthPrefixed(max: limit, "recover.block") }
            try check(&r)
            return .recoverAnswer(lastOwnRound: last, block: b)
        case 7:
            let k = try r.u64("state.k"); try check(&r); return .stateRequest(commitIndex: k)
        case 8:
            let snap = try r.lengthPrefixed(max: Message.maxSnapshotBytes, "state.snapshot")
            let c = Int(try r.u16("state.proof.count"));
            if c > Int(UInt16.max) { throw DecodeError("state.proof.count") }
            var proof: [[UInt8]] = []
            for _ in 0..<c { proof.append(try r.lengthPrefixed(max: limit, "state.proof")) }
            try r.expectEnd("message")
            return .stateResponse(snapshot: snap, proof: proof)
        default:
            throw DecodeError("message.type")
        }
    }
}
