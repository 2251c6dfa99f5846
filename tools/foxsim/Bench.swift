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
        let payload = (0..<10).map { Entry(id: EntryID(origin: 0, incarnation: 1, seq: UInt64($0)), kind: 1, body: [UInt8](repeating: 7, count: 100)) }
        var block = Block(epoch: 1, round: 1, author: 0, timestamp: 1, parents: parents, payloadDigest: BlockCodec.payloadDigest(payload),
                          attestation: nil, payload: payload, signature: [])
        let d = block.digest
        block.signature = keys.signers[0].sign(d)
        let bytes = BlockCodec.encode(block)
        print("block: \(bytes.count) bytes, 7 parents, 10 entries of 100 bytes")
        time("P-256 sign", 200) { _ = keys.signers[0].sign(d) }
        time("P-256 verify", 200) { _ = keys.verifier.verify(block.signature, digest: d, author: 0) }
        time("encode", 2000) { _ = BlockCodec.encode(block) }
        time("decode (strict)", 2000) { _ = try! BlockCodec.decode(bytes, maxParents: c.maxParents, maxBlockBytes: c.params.maxBlockBytes, maxEntryBytes: c.maxEntryBytes) }
        time("digest", 2000) { _ = block.digest }
        // Committer + linearizer cost per block: a baseline run, core time per committed block.
        var s = Scenario.make("baseline", n: 4, seed: 1)
        s.duration = 3_000_000_000
        let clock = ContinuousClock()
        let start = clock.now
        let r = Simulator(s).run()
        let dd = clock.now - start
        let ns = Double(dd.components.seconds) * 1e9 + Double(dd.components.attoseconds) / 1e9
        print("simulated n=4 baseline: \(r.events) events, \(r.messages) messages, \(r.commits) commits in \(String(format: "%.2f", ns / 1e9)) s wall " +
              "(\(String(format: "%.1f", ns / Double(max(r.events, 1)) / 1000)) µs/event incl. validation, fake MAC signatures)")
    }
}
