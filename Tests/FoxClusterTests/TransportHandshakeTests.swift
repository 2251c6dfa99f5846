import Crypto
import NIOCore
import Testing

@testable import FoxCluster

/// The handshake state machine without a channel: the two sides' payloads are handed across by
/// hand, so each refusal is checked at the exact message that causes it.
@Suite("Cluster handshake")
struct TransportHandshakeTests {
    typealias Machine = ClusterHandshakeStateMachine

    let committee = TestCommittee(ports: [5001, 5002, 5003])

    func context(_ index: Int, key: P256.Signing.PrivateKey? = nil, entries: [ClusterBookEntry]? = nil)
        -> ClusterHandshakeContext
    {
        committee.handshakeContext(index, key: key, entries: entries)
    }

    static func nonce(_ byte: UInt8) -> [UInt8] { [UInt8](repeating: byte, count: 32) }

    static func frame(_ payload: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: payload) }

    static let admitAll: @Sendable (UInt16) -> Bool = { _ in true }

    /// An acceptor whose connection is active (it waits for the hello).
    static func acceptor(_ context: ClusterHandshakeContext, nonce: [UInt8]) -> Machine {
        var machine = Machine(role: .acceptor, context: context, nonce: nonce)
        #expect(machine.start() == [])
        return machine
    }

    /// Dialer 0 and acceptor 1 complete the three messages; both end authenticated with the
    /// other's index.
    @Test func dialerAndAcceptorAuthenticateEachOther() {
        var dialer = Machine(role: .dialer(peer: 1), context: context(0), nonce: Self.nonce(0xA))
        var acceptor = Self.acceptor(context(1), nonce: Self.nonce(0xB))
        let hello = dialer.start()
        #expect(hello.count == 1)
        guard case .send(let reply) = acceptor.receive(Self.frame(hello[0]), admits: Self.admitAll) else {
            Issue.record("the acceptor does not answer the hello")
            return
        }
        #expect(reply.count == 2)
        #expect(dialer.receive(Self.frame(reply[0]), admits: Self.admitAll) == .send([]))
        guard case .authenticated(1, let proof) = dialer.receive(Self.frame(reply[1]), admits: Self.admitAll) else {
            Issue.record("the dialer does not accept the acceptor's proof")
            return
        }
        #expect(proof.count == 1 && dialer.peer == 1)
        #expect(acceptor.receive(Self.frame(proof[0]), admits: Self.admitAll) == .authenticated(peer: 0, send: []))
        #expect(acceptor.peer == 0)
    }

    /// The acceptor's book has another address for entry 2: it refuses the dialer's hello with
    /// a detail naming entry 2 and replies with its own hello, from which the dialer names the
    /// same entry.
    @Test func digestMismatchNamesTheDifferingEntry() throws {
        var otherEntries = committee.entries
        otherEntries[2].address = "10.0.0.9:5003"
        var dialer = Machine(role: .dialer(peer: 1), context: context(0), nonce: Self.nonce(0xA))
        var acceptor = Self.acceptor(context(1, entries: otherEntries), nonce: Self.nonce(0xB))
        let action = acceptor.receive(Self.frame(dialer.start()[0]), admits: Self.admitAll)
        guard case .refuse(let refusal, let reply) = action else {
            Issue.record("expected a refusal, got \(action)")
            return
        }
        #expect(refusal.reason == .wrongDigest)
        #expect(refusal.detail.contains("entry 2 differs: ours 10.0.0.9:5003 key"))
        #expect(refusal.detail.contains("theirs 127.0.0.1:5003 key"))
        #expect(!refusal.detail.contains("entry 0") && !refusal.detail.contains("entry 1"))
        let dialerAction = dialer.receive(Self.frame(try #require(reply.first)), admits: Self.admitAll)
        guard case .refuse(let dialerRefusal, []) = dialerAction else {
            Issue.record("expected a refusal, got \(dialerAction)")
            return
        }
        #expect(dialerRefusal.reason == .wrongDigest && dialerRefusal.detail.contains("entry 2 differs"))
    }

    /// The explanation of a mismatch: several entries, a different count, or no entry at all.
    @Test func bookDifferenceDescriptions() {
        let entries = committee.entries
        var changed = entries
        changed[0].publicKeyDER = committee.members[1].publicKeyDER
        changed[1].address = "host:1"
        let both = Machine.describeDifference(ours: entries, theirs: changed)
        #expect(both.contains("entry 0 differs") && both.contains("entry 1 differs") && !both.contains("entry 2"))
        let fewer = Machine.describeDifference(ours: entries, theirs: Array(entries.prefix(2)))
        #expect(fewer == "theirs has 2 entries, ours 3")
        #expect(Machine.describeDifference(ours: entries, theirs: entries).contains("ordering parameter differs"))
        #expect(Machine.fingerprint([1, 2, 3]) == "039058c6f2c0cb49")  // SHA-256("\x01\x02\x03")
    }

    /// Hellos that name an index outside the committee, or the acceptor's own, are refused
    /// before any proof is made.
    @Test func unknownIndexAndOwnIndexAreRefused() {
        for (index, reason) in [(UInt16(3), ClusterTransport.HandshakeFailure.unknownIndex), (1, .claimsToBeMe)] {
            var acceptor = Self.acceptor(context(1), nonce: Self.nonce(0xB))
            let hello = ClusterHandshakeMessage.hello(
                .init(
                    digest: TestCommittee.digest(committee.entries), index: index, nonce: Self.nonce(0xA),
                    entries: committee.entries))
            guard case .refuse(let refusal, []) = acceptor.receive(Self.frame(hello.encode()), admits: Self.admitAll)
            else {
                Issue.record("index \(index) not refused")
                continue
            }
            #expect(refusal.reason == reason)
        }
    }

    /// A dialer that signs with another key than the book's for its index is refused on its
    /// proof; an acceptor that does is refused by the dialer, which then sends nothing.
    @Test func proofsByTheWrongKeyAreRefusedInBothRoles() {
        let stranger = P256.Signing.PrivateKey()
        var dialer = Machine(role: .dialer(peer: 1), context: context(0, key: stranger), nonce: Self.nonce(0xA))
        var acceptor = Self.acceptor(context(1), nonce: Self.nonce(0xB))
        guard case .send(let reply) = acceptor.receive(Self.frame(dialer.start()[0]), admits: Self.admitAll) else {
            Issue.record("no reply")
            return
        }
        _ = dialer.receive(Self.frame(reply[0]), admits: Self.admitAll)
        guard case .authenticated(_, let proof) = dialer.receive(Self.frame(reply[1]), admits: Self.admitAll) else {
            Issue.record("the honest acceptor's proof is refused")
            return
        }
        #expect(acceptor.receive(Self.frame(proof[0]), admits: Self.admitAll).refusalReason == .badSignature)

        var honestDialer = Machine(role: .dialer(peer: 1), context: context(0), nonce: Self.nonce(0xA))
        var forgingAcceptor = Self.acceptor(context(1, key: stranger), nonce: Self.nonce(0xB))
        guard
            case .send(let forged) = forgingAcceptor.receive(
                Self.frame(honestDialer.start()[0]), admits: Self.admitAll)
        else {
            Issue.record("no reply")
            return
        }
        _ = honestDialer.receive(Self.frame(forged[0]), admits: Self.admitAll)
        #expect(honestDialer.receive(Self.frame(forged[1]), admits: Self.admitAll).refusalReason == .badSignature)
    }

    /// A proof recorded from one connection does not open another: each side signs the nonce
    /// the other chose for this connection.
    @Test func aRecordedProofDoesNotReplay() {
        var dialer = Machine(role: .dialer(peer: 1), context: context(0), nonce: Self.nonce(0xA))
        var acceptor = Self.acceptor(context(1), nonce: Self.nonce(0xB))
        let hello = dialer.start()[0]
        guard case .send(let reply) = acceptor.receive(Self.frame(hello), admits: Self.admitAll) else {
            Issue.record("no reply")
            return
        }
        _ = dialer.receive(Self.frame(reply[0]), admits: Self.admitAll)
        guard case .authenticated(_, let recorded) = dialer.receive(Self.frame(reply[1]), admits: Self.admitAll) else {
            Issue.record("no proof")
            return
        }
        var later = Self.acceptor(context(1), nonce: Self.nonce(0xC))
        #expect(later.receive(Self.frame(hello), admits: Self.admitAll).refusalReason == nil)
        #expect(later.receive(Self.frame(recorded[0]), admits: Self.admitAll).refusalReason == .badSignature)
    }

    /// The dialer refuses an acceptor that answers as another member, and either side refuses
    /// a blocked peer.
    @Test func unexpectedAndBlockedPeersAreRefused() {
        var dialer = Machine(role: .dialer(peer: 2), context: context(0), nonce: Self.nonce(0xA))
        var acceptor = Self.acceptor(context(1), nonce: Self.nonce(0xB))
        guard case .send(let reply) = acceptor.receive(Self.frame(dialer.start()[0]), admits: Self.admitAll) else {
            Issue.record("no reply")
            return
        }
        #expect(dialer.receive(Self.frame(reply[0]), admits: Self.admitAll).refusalReason == .unexpectedPeer)

        var blockingAcceptor = Self.acceptor(context(1), nonce: Self.nonce(0xB))
        var secondDialer = Machine(role: .dialer(peer: 1), context: context(0), nonce: Self.nonce(0xA))
        let action = blockingAcceptor.receive(Self.frame(secondDialer.start()[0]), admits: { $0 != 0 })
        #expect(action.refusalReason == .blocked)
    }

    /// Another protocol version is refused on its first byte, and the acceptor replies with its
    /// hello; frames out of turn or truncated are malformed.
    @Test func wrongVersionAndMalformedFramesAreRefused() {
        var dialer = Machine(role: .dialer(peer: 1), context: context(0), nonce: Self.nonce(0xA))
        var hello = dialer.start()[0]
        hello[0] = 2
        var acceptor = Self.acceptor(context(1), nonce: Self.nonce(0xB))
        let action = acceptor.receive(Self.frame(hello), admits: Self.admitAll)
        #expect(action.refusalReason == .wrongVersion)
        if case .refuse(_, let reply) = action { #expect(reply.count == 1) }

        var early = Self.acceptor(context(1), nonce: Self.nonce(0xB))
        let proof = ClusterHandshakeMessage.proof(signature: [UInt8](repeating: 0, count: 64)).encode()
        #expect(early.receive(Self.frame(proof), admits: Self.admitAll).refusalReason == .malformed)

        var truncated = Self.acceptor(context(1), nonce: Self.nonce(0xB))
        #expect(truncated.receive(Self.frame(Array(hello.prefix(20))), admits: Self.admitAll).refusalReason != nil)
        var cut = Self.acceptor(context(1), nonce: Self.nonce(0xB))
        var goodDialer = Machine(role: .dialer(peer: 1), context: context(0), nonce: Self.nonce(0xA))
        var goodHello = goodDialer.start()[0]
        goodHello.removeLast()
        #expect(cut.receive(Self.frame(goodHello), admits: Self.admitAll).refusalReason == .malformed)
    }

    /// The handshake messages byte for byte.
    @Test func handshakeMessageEncoding() throws {
        let hello = ClusterHandshakeMessage.hello(
            .init(
                digest: [UInt8](repeating: 0xDD, count: 32), index: 0x0102, nonce: [UInt8](repeating: 0xEE, count: 32),
                entries: [ClusterBookEntry(address: "h:1", publicKeyDER: [0xAB, 0xCD])]))
        let expected: [UInt8] =
            [0x01, 0x01]  // version 1, hello
            + [UInt8](repeating: 0xDD, count: 32)  // digest
            + [0x01, 0x02]  // sender index
            + [UInt8](repeating: 0xEE, count: 32)  // nonce
            + [0x00, 0x01]  // one entry
            + [0x00, 0x03, 0x68, 0x3A, 0x31]  // address "h:1"
            + [0x00, 0x02, 0xAB, 0xCD]  // key DER
        #expect(hello.encode() == expected)
        #expect(try ClusterHandshakeMessage.decode(ByteBuffer(bytes: expected)) == hello)
        let proof = ClusterHandshakeMessage.proof(signature: [UInt8](repeating: 0x55, count: 64))
        #expect(proof.encode() == [0x01, 0x02] + [UInt8](repeating: 0x55, count: 64))
        #expect(try ClusterHandshakeMessage.decode(ByteBuffer(bytes: proof.encode())) == proof)
    }
}

extension ClusterHandshakeStateMachine.Action {
    var refusalReason: ClusterTransport.HandshakeFailure? {
        if case .refuse(let refusal, _) = self { return refusal.reason }
        return nil
    }
}
