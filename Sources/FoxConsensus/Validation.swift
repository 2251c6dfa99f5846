/// Why a received block was dropped (section 5). Every rule reads only the block's bytes and the
/// epoch configuration, so all honest nodes reach the same verdict.
public struct ValidationError: Error, Equatable, Sendable, CustomStringConvertible {
    public var rule: Int
    public var reason: String
    public var description: String { "rule \(rule): \(reason)" }
}

public enum BlockValidator {
    /// Decodes strictly and checks rules 1-6. Returns the block and its digest.
    public static func validate(_ bytes: [UInt8], committee c: Committee, verifier: SignatureVerifier) throws -> (
        Block, Digest
    ) {
        let b: Block
        do {
            b = try BlockCodec.decode(
                bytes, maxParents: c.maxParents, maxBlockBytes: c.params.maxBlockBytes,
                maxEntryBytes: c.maxEntryBytes)
        } catch let e as DecodeError {
            throw ValidationError(rule: 1, reason: "not canonical: \(e.field)")
        }
        try checkStructure(b, committee: c)
        // Rule 1: payload digest and signature (most expensive last).
        if BlockCodec.payloadDigest(b.payload) != b.payloadDigest {
            throw ValidationError(rule: 1, reason: "payloadDigest")
        }
        let d = b.digest
        if !verifier.verify(b.signature, digest: d, author: b.author) {
            throw ValidationError(rule: 1, reason: "signature")
        }
        return (b, d)
    }

    /// Rules 1 (epoch, author), 2-6, without the payload digest and signature.
    public static func checkStructure(_ b: Block, committee c: Committee) throws {
        if b.epoch != c.epoch { throw ValidationError(rule: 1, reason: "epoch") }
        if Int(b.author) >= c.n { throw ValidationError(rule: 1, reason: "author") }
        // Rule 2.
        if b.round < 1 { throw ValidationError(rule: 2, reason: "round 0") }
        for p in b.parents where p.round >= b.round { throw ValidationError(rule: 2, reason: "parent round") }
        // Rule 5: strictly increasing, one per slot, bounded.
        if b.parents.count > c.maxParents { throw ValidationError(rule: 5, reason: "too many parents") }
        for i in b.parents.indices.dropFirst() {
            if !(b.parents[i - 1] < b.parents[i]) { throw ValidationError(rule: 5, reason: "parents not increasing") }
            if b.parents[i - 1].slot == b.parents[i].slot {
                throw ValidationError(rule: 5, reason: "two parents in one slot")
            }
        }
        for p in b.parents where Int(p.author) >= c.n { throw ValidationError(rule: 5, reason: "parent author") }
        // Round-0 parents are genesis refs.
        for p in b.parents where p.round == 0 && c.genesis[Int(p.author)] != p {
            throw ValidationError(rule: 3, reason: "bad genesis ref")
        }
        // Rule 3: Q distinct authors at round - 1.
        var seen = [Bool](repeating: false, count: c.n); var count = 0
        for p in b.parents where p.round == b.round - 1 && !seen[Int(p.author)] {
            seen[Int(p.author)] = true; count += 1
        }
        if count < c.quorum { throw ValidationError(rule: 3, reason: "parents at round-1 from \(count) < Q authors") }
        // Rule 4: at most one own parent.
        if b.parents.filter({ $0.author == b.author }).count > 1 {
            throw ValidationError(rule: 4, reason: "two own parents")
        }
        // Rule 6.
        var size = 4
        for e in b.payload {
            if e.id.origin != b.author { throw ValidationError(rule: 6, reason: "entry origin") }
            if e.encodedSize > c.maxEntryBytes { throw ValidationError(rule: 6, reason: "entry too large") }
            size += e.encodedSize
        }
        if size > c.params.maxBlockBytes { throw ValidationError(rule: 6, reason: "payload too large") }
    }
}
