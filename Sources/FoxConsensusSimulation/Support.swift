import Crypto
import FoxConsensus

public typealias Digest = FoxConsensus.Digest

/// xoshiro256** seeded by SplitMix64: the simulator's only randomness.
public struct SimRandom: Sendable {
    var s: (UInt64, UInt64, UInt64, UInt64)
    public init(seed: UInt64) {
        var x = seed
        func split() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (split(), split(), split(), split())
    }
    @inline(__always) static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
    public mutating func next() -> UInt64 {
        let result = SimRandom.rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3; s.2 ^= t; s.3 = SimRandom.rotl(s.3, 45)
        return result
    }
    /// Uniform in 0..<bound.
    public mutating func below(_ bound: UInt64) -> UInt64 { bound == 0 ? 0 : next() % bound }
    public mutating func range(_ lo: UInt64, _ hi: UInt64) -> UInt64 { hi <= lo ? lo : lo + below(hi - lo + 1) }
    /// True with probability p (parts per million).
    public mutating func chance(ppm: UInt64) -> Bool { below(1_000_000) < ppm }
    public mutating func chance(_ p: Double) -> Bool { chance(ppm: UInt64(max(0, min(1, p)) * 1_000_000)) }
    public mutating func pick<T>(_ a: [T]) -> T { a[Int(below(UInt64(a.count)))] }
    public mutating func fork() -> SimRandom { SimRandom(seed: next()) }
}

/// A fast deterministic stand-in for signatures: a MAC under a per-node secret the verifier knows.
/// A forger without the secret cannot produce it, so forgeries are truly rejected.
public struct FakeSigner: BlockSigner {
    let secret: [UInt8]
    public init(secret: [UInt8]) { self.secret = secret }
    public func sign(_ digest: Digest) -> [UInt8] { FakeSigner.mac(secret, digest) }
    static func mac(_ secret: [UInt8], _ d: Digest) -> [UInt8] {
        let a = Array(SHA256.hash(data: Array("fake-sig".utf8) + secret + d.bytes))
        return a + Array(SHA256.hash(data: a))
    }
}

public struct FakeVerifier: SignatureVerifier {
    let secrets: [[UInt8]]
    public init(secrets: [[UInt8]]) { self.secrets = secrets }
    public func verify(_ signature: [UInt8], digest: Digest, author: UInt16) -> Bool {
        Int(author) < secrets.count && signature == FakeSigner.mac(secrets[Int(author)], digest)
    }
}

/// Keys and signers for a simulated committee: fake MACs or real P-256.
public struct SimKeys: @unchecked Sendable {
    public let committee: Committee
    public let signers: [BlockSigner]
    public let verifier: SignatureVerifier

    public init(n: Int, seed: UInt64, params: OrderingParameters, realCrypto: Bool) {
        if realCrypto {
            var keys: [P256.Signing.PrivateKey] = []
            for _ in 0..<n { keys.append(P256.Signing.PrivateKey()) }
            let pubs = keys.map { Array($0.publicKey.derRepresentation) }
            let c = Committee(epoch: 1, keys: pubs, params: params)
            var byIndex = [P256.Signing.PrivateKey?](repeating: nil, count: n)
            for k in keys { byIndex[Int(c.index(ofKey: Array(k.publicKey.derRepresentation))!)] = k }
            committee = c
            signers = byIndex.map { P256BlockSigner(key: $0!) }
            do {
                verifier = try P256SignatureVerifier(committee: c)
            } catch {
                preconditionFailure("simulator committee keys are valid P-256 keys: \(error)")
            }
        } else {
            var secrets: [[UInt8]] = []
            var pubs: [[UInt8]] = []
            for i in 0..<n {
                var w = ByteWriter(); w.u64(seed); w.u64(UInt64(i))
                let s = Array(SHA256.hash(data: Array("secret".utf8) + w.bytes))
                secrets.append(s)
                pubs.append(Array(SHA256.hash(data: Array("public".utf8) + s)))
            }
            let c = Committee(epoch: 1, keys: pubs, params: params)
            var byIndex = [[UInt8]](repeating: [], count: n)
            for (i, p) in pubs.enumerated() { byIndex[Int(c.index(ofKey: p)!)] = secrets[i] }
            committee = c
            signers = byIndex.map { FakeSigner(secret: $0) }
            verifier = FakeVerifier(secrets: byIndex)
        }
    }
}

/// A binary min-heap of events ordered by (time, sequence): deterministic tie-breaking.
struct EventQueue<T> {
    var heap: [(UInt64, UInt64, T)] = []
    var seq: UInt64 = 0
    var count: Int { heap.count }
    mutating func push(_ time: UInt64, _ v: T) {
        seq += 1
        heap.append((time, seq, v))
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if less(heap[i], heap[p]) { heap.swapAt(i, p); i = p } else { break }
        }
    }
    func less(_ a: (UInt64, UInt64, T), _ b: (UInt64, UInt64, T)) -> Bool { a.0 != b.0 ? a.0 < b.0 : a.1 < b.1 }
    mutating func pop() -> (UInt64, T)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count && less(heap[l], heap[m]) { m = l }
            if r < heap.count && less(heap[r], heap[m]) { m = r }
            if m == i { break }
            heap.swapAt(i, m); i = m
        }
        return (top.0, top.2)
    }
    var peekTime: UInt64? { heap.first?.0 }
}
