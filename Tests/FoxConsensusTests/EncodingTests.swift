import Crypto
import FoxConsensusSimulation
import Testing

@testable import FoxConsensus

@Suite struct EncodingTests {
    func sampleBlock(_ keys: SimKeys) -> Block {
        let payload = [Entry(id: EntryID(origin: 0, incarnation: 3, seq: 0), kind: 1, body: [1, 2, 3])]
        var b = Block(
            epoch: 1, round: 1, author: 0, timestamp: 42, parents: keys.committee.genesis,
            payloadDigest: BlockCodec.payloadDigest(payload),
            attestation: Checkpoint(commitIndex: 5, runningHash: .zero, stateDigest: .zero, leaderRound: 9),
            payload: payload, signature: [])
        b.signature = keys.signers[0].sign(b.digest)
        return b
    }

    @Test func blockRoundTripsAndIsCanonical() throws {
        let keys = SimKeys(n: 4, seed: 1, params: OrderingParameters(), realCrypto: false)
        let c = keys.committee
        let b = sampleBlock(keys)
        let bytes = BlockCodec.encode(b)
        #expect(bytes[0] == BlockCodec.version)
        let d = try BlockCodec.decode(
            bytes, maxParents: c.maxParents, maxBlockBytes: c.params.maxBlockBytes, maxEntryBytes: c.maxEntryBytes)
        #expect(d == b)
        // Big-endian fixed width: epoch then round.
        #expect(Array(bytes[1..<9]) == [0, 0, 0, 0, 0, 0, 0, 1])
        #expect(Array(bytes[9..<17]) == [0, 0, 0, 0, 0, 0, 0, 1])
        // Trailing byte, bad version, bad presence byte: all rejected.
        #expect(throws: DecodeError.self) {
            try BlockCodec.decode(
                bytes + [0], maxParents: c.maxParents, maxBlockBytes: c.params.maxBlockBytes,
                maxEntryBytes: c.maxEntryBytes)
        }
        var v = bytes; v[0] = 2
        #expect(throws: DecodeError.self) {
            try BlockCodec.decode(
                v, maxParents: c.maxParents, maxBlockBytes: c.params.maxBlockBytes, maxEntryBytes: c.maxEntryBytes)
        }
        let presenceAt = 1 + 8 + 8 + 2 + 8 + 2 + 4 * BlockCodec.refBytes + 32
        var p = bytes; #expect(p[presenceAt] == 1); p[presenceAt] = 2
        #expect(throws: DecodeError.self) {
            try BlockCodec.decode(
                p, maxParents: c.maxParents, maxBlockBytes: c.params.maxBlockBytes, maxEntryBytes: c.maxEntryBytes)
        }
        #expect(throws: DecodeError.self) {
            try BlockCodec.decode(
                Array(bytes.dropLast()), maxParents: c.maxParents, maxBlockBytes: c.params.maxBlockBytes,
                maxEntryBytes: c.maxEntryBytes)
        }
    }

    @Test func digestExcludesSignatureAndPayloadButBindsPayloadDigest() {
        let keys = SimKeys(n: 4, seed: 1, params: OrderingParameters(), realCrypto: false)
        let b = sampleBlock(keys)
        var other = b; other.signature = [UInt8](repeating: 9, count: 64)
        #expect(other.digest == b.digest)
        var p = b; p.payload = []
        #expect(p.digest == b.digest)
        var pd = b; pd.payloadDigest = .zero
        #expect(pd.digest != b.digest)
    }

    @Test func p256SignaturesVerifyAndForgeriesFail() throws {
        let keys = SimKeys(n: 4, seed: 1, params: OrderingParameters(), realCrypto: true)
        let b = sampleBlock(keys)
        let d = b.digest
        #expect(keys.verifier.verify(b.signature, digest: d, author: 0))
        #expect(!keys.verifier.verify(b.signature, digest: d, author: 1))
        var forged = b.signature; forged[10] ^= 1
        #expect(!keys.verifier.verify(forged, digest: d, author: 0))
        let wrongKey = keys.signers[1].sign(d)
        #expect(!keys.verifier.verify(wrongKey, digest: d, author: 0))
        // The validator accepts the real block and rejects a tampered header.
        let (vb, vd) = try BlockValidator.validate(
            BlockCodec.encode(b), committee: keys.committee, verifier: keys.verifier)
        #expect(vb == b && vd == d)
        var t = b; t.timestamp += 1
        #expect(throws: ValidationError.self) {
            try BlockValidator.validate(BlockCodec.encode(t), committee: keys.committee, verifier: keys.verifier)
        }
    }

    @Test func fakeSignerRejectsForgeries() {
        let keys = SimKeys(n: 4, seed: 1, params: OrderingParameters(), realCrypto: false)
        let d = Digest.sha256([1, 2, 3])
        #expect(keys.verifier.verify(keys.signers[2].sign(d), digest: d, author: 2))
        #expect(!keys.verifier.verify(keys.signers[3].sign(d), digest: d, author: 2))
        #expect(!keys.verifier.verify([UInt8](repeating: 0, count: 64), digest: d, author: 2))
    }

    @Test func messagesRoundTripAndControlMessagesAreChecked() throws {
        let refs = [BlockRef(round: 3, author: 1, digest: Digest.sha256([1]))]
        let msgs: [Message] = [
            .block([1, 2, 3]), .blocks([[1], [2, 3]]), .fetch(refs), .status([1, 2, 3, 4]), .recoverQuery,
            .recoverAnswer(lastOwnRound: 9, block: [5]), .recoverAnswer(lastOwnRound: 0, block: nil),
        ]
        for m in msgs {
            let e = m.encode()
            #expect(try Message.decode(e, maxBlockBytes: 1 << 20) == m)
            #expect(throws: DecodeError.self) { try Message.decode(e + [0], maxBlockBytes: 1 << 20) }
        }
        var status = Message.status([1, 2, 3, 4]).encode()
        status[10] ^= 0x40
        #expect(throws: DecodeError.self) { try Message.decode(status, maxBlockBytes: 1 << 20) }
    }

    @Test func saturatingArithmetic() {
        #expect(UInt64(3).minusSaturating(5) == 0)
        #expect(UInt64(5).minusSaturating(3) == 2)
        #expect(UInt64.max.plusSaturating(1) == .max)
    }
}

@Suite struct CommitteeTests {
    @Test(arguments: [
        (1, 0, 1), (2, 0, 2), (3, 0, 3), (4, 1, 3), (5, 1, 4), (6, 1, 5), (7, 2, 5), (10, 3, 7), (100, 33, 67),
    ])
    func thresholds(n: Int, f: Int, q: Int) {
        let keys = (0..<n).map { [UInt8($0 % 256), UInt8($0 / 256)] }
        let c = Committee(epoch: 1, keys: keys, params: OrderingParameters())
        #expect(c.f == f)
        #expect(c.quorum == q)
        #expect(c.validity == f + 1)
        #expect(c.readiness == 2 * f + 1)
        #expect(2 * c.quorum - n >= f + 1 || n <= 3)
    }

    @Test func digestBindsOrderingParametersAndSortsKeys() {
        let keys: [[UInt8]] = [[3], [1], [2], [9]]
        let a = Committee(epoch: 1, keys: keys, params: OrderingParameters())
        let b = Committee(epoch: 1, keys: keys.reversed(), params: OrderingParameters())
        let c = Committee(epoch: 1, keys: keys, params: OrderingParameters(gcDepth: 10))
        let d = Committee(epoch: 1, keys: keys, params: OrderingParameters(fairMode: false))
        #expect(a.digest == b.digest)
        #expect(a.publicKeys == [[1], [2], [3], [9]])
        #expect(a.digest != c.digest && a.digest != d.digest)
        // Every author leads once per n rounds.
        #expect(Set((1...4).map { a.leader(UInt64($0)) }).count == 4)
        #expect(a.genesis.count == 4 && Set(a.genesis.map(\.digest)).count == 4)
    }
}
