import Crypto
import Foundation
import FoxConsensus
import FoxConsensusSimulation

enum Bench {
    static func time(_ label: String, _ iterations: Int, _ body: () -> Void) {
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<iterations { body() }
        let d = clock.now - start
        let ns = Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9
        print("\(label): \(String(format: "%.1f", ns / Double(iterations) / 1000)) µs/op")
    }

    static func run() {
        let n = 7
        let keys = SimKeys(n: n, seed: 1, params: OrderingParameters(), realCrypto: true)
        let c = keys.committee
        let parents = c.genesis
        let payload = (0..<10).map {
            Entry(
                id: EntryID(origin: 0, incarnation: 1, seq: UInt64($0)), kind: 1,
                body: [UInt8](repeating: 7, count: 100))
        }
        var block = Block(
            epoch: 1, round: 1, author: 0, timestamp: 1, parents: parents,
            payloadDigest: BlockCodec.payloadDigest(payload),
            attestation: nil, payload: payload, signature: [])
        let d = block.digest
        block.signature = keys.signers[0].sign(d)
        let bytes = BlockCodec.encode(block)
        print("block: \(bytes.count) bytes, 7 parents, 10 entries of 100 bytes")
        time("P-256 sign", 200) { _ = keys.signers[0].sign(d) }
        time("P-256 verify", 200) { _ = keys.verifier.verify(block.signature, digest: d, author: 0) }
        time("encode", 2000) { _ = BlockCodec.encode(block) }
        // Checked once, so the timing below measures a successful decode, not an early failure.
        guard
            (try? BlockCodec.decode(
                bytes, maxParents: c.maxParents, maxBlockBytes: c.params.maxBlockBytes, maxEntryBytes: c.maxEntryBytes))
                != nil
        else { fatalError("foxsim --bench: the sample block does not decode") }
        time("decode (strict)", 2000) {
            _ = try? BlockCodec.decode(
                bytes, maxParents: c.maxParents, maxBlockBytes: c.params.maxBlockBytes, maxEntryBytes: c.maxEntryBytes)
        }
        time("digest", 2000) { _ = block.digest }
        for n in [4, 7] { for fair in [true, false] { committer(n: n, rounds: 400, fair: fair) } }
        // Committer + linearizer cost per block: a baseline run, core time per committed block.
        var s = Scenario.make("baseline", n: 4, seed: 1)
        s.duration = 3_000_000_000
        let clock = ContinuousClock()
        let start = clock.now
        let r = Simulator(s).run()
        let dd = clock.now - start
        let ns = Double(dd.components.seconds) * 1e9 + Double(dd.components.attoseconds) / 1e9
        print(
            "simulated n=4 baseline: \(r.events) events, \(r.messages) messages, \(r.commits) commits in \(String(format: "%.2f", ns / 1e9)) s wall "
                + "(\(String(format: "%.1f", ns / Double(max(r.events, 1)) / 1000)) µs/event incl. validation, fake MAC signatures)"
        )
    }
}

extension Bench {
    /// Committer micro-benchmark: a fully connected DAG of `rounds` rounds fed to an observer
    /// core (fair mode), minus the cost of validating the same blocks alone: the cost per block
    /// of the commit rule, linearization and bookkeeping.
    static func committer(n: Int, rounds: UInt64, fair: Bool) {
        let keys = SimKeys(
            n: n, seed: 9, params: OrderingParameters(fairMode: fair, gcDepth: 50, checkpointInterval: 1_000_000),
            realCrypto: false)
        let c = keys.committee
        var prev = c.genesis
        var msgs: [[UInt8]] = [], raw: [[UInt8]] = []
        for r in UInt64(1)...rounds {
            var cur: [BlockRef] = []
            for a in 0..<n {
                let e = Entry(
                    id: EntryID(origin: UInt16(a), incarnation: 1, seq: r - 1), kind: 1,
                    body: [UInt8](repeating: 1, count: 64))
                var b = Block(
                    epoch: c.epoch, round: r, author: UInt16(a), timestamp: r * 1_000_000 + UInt64(a), parents: prev,
                    payloadDigest: BlockCodec.payloadDigest([e]), attestation: nil, payload: [e], signature: [])
                b.signature = keys.signers[a].sign(b.digest)
                let bytes = BlockCodec.encode(b)
                raw.append(bytes); msgs.append(Message.block(bytes).encode()); cur.append(b.ref)
            }
            prev = cur.sorted()
        }
        var img = StoreImage.fresh
        img.meta.lastOwnRound = .max / 2
        let clock = ContinuousClock()
        func secs(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        let t0 = clock.now
        for b in raw {
            // Every block here is valid: a failure would make the figure meaningless, so it stops the run.
            guard (try? BlockValidator.validate(b, committee: c, verifier: keys.verifier)) != nil else {
                fatalError("foxsim --bench: a generated block failed validation")
            }
        }
        let validation = secs(clock.now - t0)
        var core = ConsensusCore(
            config: CoreConfig(committee: c, me: 0), signer: keys.signers[0], verifier: keys.verifier, image: img)
        _ = core.step(.start, now: 0)
        let t1 = clock.now
        for m in msgs { _ = core.step(.message(from: 1, bytes: m), now: 1) }
        let total = secs(clock.now - t1)
        let blocks = Double(raw.count)
        print(
            "committer n=\(n) \(fair ? "fair" : "plain") \(rounds) rounds: \(core.commitIndex) commits, "
                + String(
                    format:
                        "%.1f µs/block total, %.1f µs/block validation, %.1f µs/block commit rule + linearization + bookkeeping",
                    total / blocks * 1e6, validation / blocks * 1e6, (total - validation) / blocks * 1e6))
    }
}
