// swift-crypto does not mark its keys Sendable; they are immutable values.
@preconcurrency import Crypto
import NIOCore

extension ClusterTransport {
    /// Why a connection was refused before (or, for the frame limit, after) it was authenticated.
    /// Counted per reason in `Metrics.handshakeFailures`; the log line says more.
    public enum HandshakeFailure: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
        /// The peer speaks another protocol version.
        case wrongVersion = "wrong version"
        /// The peer's address book (or committee parameters) differs: the digests differ.
        case wrongDigest = "wrong digest"
        /// The peer claims an index outside the committee.
        case unknownIndex = "unknown index"
        /// The peer claims this node's own index.
        case claimsToBeMe = "claims to be me"
        /// The dialed address answered as another member than the one dialed.
        case unexpectedPeer = "unexpected peer"
        /// The peer's proof does not verify under the key the book gives for the index it claims.
        case badSignature = "bad signature"
        /// A handshake frame that does not parse, or arrives out of turn.
        case malformed = "malformed handshake"
        /// The handshake did not complete within `handshakeTimeoutMillis`.
        case timeout = "timeout"
        /// The peer closed the connection before the handshake completed.
        case closed = "closed during handshake"
        /// The peer is blocked by fault injection (`setBlocked`).
        case blocked = "blocked"
        /// More inbound handshakes in progress than `maxPendingHandshakes`.
        case tooManyPending = "too many pending handshakes"
        /// A handshake frame longer than `maxHandshakeFrameBytes`.
        case oversizeFrame = "oversize handshake frame"
        /// The TLS handshake failed (no or a refused certificate, a peer without TLS, ...).
        case tls = "TLS handshake failed"
        /// The peer's TLS certificate holds another key than its book entry.
        case certificateOfAnotherKey = "TLS certificate of another key"

        public var description: String { rawValue }
    }
}

/// A refused handshake: the reason (a metric) and a sentence for the log.
struct ClusterRefusal: Equatable, Error {
    var reason: ClusterTransport.HandshakeFailure
    var detail: String
}

/// What the handshake needs to know about this node and its committee; one per transport.
struct ClusterHandshakeContext: Sendable {
    var me: UInt16
    var members: [ClusterMember]
    var publicKeys: [P256.Signing.PublicKey]
    var key: P256.Signing.PrivateKey
    var digest: [UInt8]
    var entries: [ClusterBookEntry]

    func name(_ index: UInt16) -> String {
        Int(index) < members.count ? members[Int(index)].description : "node \(index)"
    }
}

/// The handshake of one connection as a state machine: frames in, actions out; no channel.
///
/// Dialer D, acceptor A:
///
///     D → A  Hello{version, digest, D, nonceA, entries}
///     A → D  Hello{version, digest, A, nonceB, entries}, Proof{sign_A(transcript(acceptor, nonceA))}
///     D → A  Proof{sign_D(transcript(dialer, nonceB))}
///
/// where transcript(role, nonce) = "foxmq/cluster-handshake/v1" ‖ role ‖ nonce ‖ D ‖ A ‖ digest
/// (indices big-endian u16). Each side signs the nonce the other chose, so a proof cannot be
/// replayed from an earlier connection; the role byte keeps a proof made as one role from being
/// presented as the other. Each side verifies the other's proof with the key the book gives to
/// the index the other claims. Nothing is delivered before the machine says `authenticated`.
///
/// The dialer is authenticated once it has sent its proof: it may send its messages right
/// behind it (the acceptor reads them only once the proof verified). If the acceptor refuses
/// that proof, those messages are lost, which consensus tolerates (it recovers by sync); a
/// refused proof means a misconfigured key, not a transient fault.
///
/// Without TLS this authenticates the peer at the start of the connection only: someone on the
/// path can take the connection over afterwards. TLS (a handler in front of the connection
/// handler) closes that; the handshake then still checks the book and the committee key.
struct ClusterHandshakeStateMachine {
    enum Role: Equatable {
        case dialer(peer: UInt16)
        case acceptor
    }

    enum Action: Equatable {
        /// Send these payloads and wait for the next frame.
        case send([[UInt8]])
        /// The peer is authenticated; send these payloads first.
        case authenticated(peer: UInt16, send: [[UInt8]])
        /// Send these payloads (this node's hello, so that the peer can explain the mismatch
        /// too), then close.
        case refuse(ClusterRefusal, send: [[UInt8]])
    }

    private enum State {
        case initial
        case dialerAwaitingHello
        case dialerAwaitingProof(peerNonce: [UInt8])
        case acceptorAwaitingHello
        case acceptorAwaitingProof(peer: UInt16)
        case authenticated(peer: UInt16)
        case failed
    }

    static let domainTag = Array("foxmq/cluster-handshake/v1".utf8)
    private static let acceptorRole: UInt8 = 0x01
    private static let dialerRole: UInt8 = 0x02

    let role: Role
    private let context: ClusterHandshakeContext
    private let nonce: [UInt8]
    private var state = State.initial

    /// `nonce`: 32 fresh random bytes (injected so that tests can replay a handshake).
    init(role: Role, context: ClusterHandshakeContext, nonce: [UInt8]) {
        precondition(nonce.count == ClusterHandshakeMessage.nonceBytes)
        if case .dialer(let peer) = role {
            precondition(peer != context.me && Int(peer) < context.members.count, "dialing an invalid peer")
        }
        self.role = role
        self.context = context
        self.nonce = nonce
    }

    /// The peer once authenticated.
    var peer: UInt16? {
        if case .authenticated(let peer) = state { return peer }
        return nil
    }

    /// The first payloads to send when the connection becomes active: the dialer's hello.
    mutating func start() -> [[UInt8]] {
        guard case .initial = state else { preconditionFailure("handshake started twice") }
        switch role {
        case .dialer:
            state = .dialerAwaitingHello
            return [ownHello()]
        case .acceptor:
            state = .acceptorAwaitingHello
            return []
        }
    }

    /// A handshake frame from the peer. `admits` says whether a peer may connect now (it is
    /// false for a blocked peer).
    mutating func receive(_ frame: ByteBuffer, admits: (UInt16) -> Bool) -> Action {
        let message: ClusterHandshakeMessage
        do {
            message = try ClusterHandshakeMessage.decode(frame)
        } catch .version(let version) {
            // Answer with this node's hello so that the peer logs the mismatch too.
            let reply = role == .acceptor ? [ownHello()] : []
            return fail(
                .wrongVersion, "it speaks protocol version \(version), this node \(ClusterHandshakeMessage.version)",
                reply)
        } catch {
            return fail(.malformed, "\(error)")
        }
        switch (state, message) {
        case (.acceptorAwaitingHello, .hello(let hello)):
            return acceptorReceived(hello, admits: admits)
        case (.acceptorAwaitingProof(let peer), .proof(let signature)):
            let transcript = Self.transcript(
                role: Self.dialerRole, nonce: nonce, dialer: peer, acceptor: context.me, digest: context.digest)
            guard verify(signature, transcript, by: peer) else {
                return fail(.badSignature, "\(context.name(peer))'s proof does not verify under the book's key")
            }
            state = .authenticated(peer: peer)
            return .authenticated(peer: peer, send: [])
        case (.dialerAwaitingHello, .hello(let hello)):
            return dialerReceived(hello, admits: admits)
        case (.dialerAwaitingProof(let peerNonce), .proof(let signature)):
            guard case .dialer(let peer) = role else { preconditionFailure() }
            let transcript = Self.transcript(
                role: Self.acceptorRole, nonce: nonce, dialer: context.me, acceptor: peer, digest: context.digest)
            guard verify(signature, transcript, by: peer) else {
                return fail(.badSignature, "\(context.name(peer))'s proof does not verify under the book's key")
            }
            let ownTranscript = Self.transcript(
                role: Self.dialerRole, nonce: peerNonce, dialer: context.me, acceptor: peer, digest: context.digest)
            state = .authenticated(peer: peer)
            return .authenticated(peer: peer, send: [sign(ownTranscript)])
        case (.initial, _), (.authenticated, _), (.failed, _):
            preconditionFailure("handshake frame outside the handshake")
        case (_, .hello):
            return fail(.malformed, "a second hello")
        case (_, .proof):
            return fail(.malformed, "a proof before the hello")
        }
    }

    private mutating func acceptorReceived(
        _ hello: ClusterHandshakeMessage.Hello, admits: (UInt16) -> Bool
    ) -> Action {
        if let refusal = checkCommon(hello) {
            return fail(refusal.reason, refusal.detail, refusal.reason == .wrongDigest ? [ownHello()] : [])
        }
        guard Int(hello.index) < context.members.count else {
            return fail(
                .unknownIndex, "it claims index \(hello.index), the committee has \(context.members.count) members")
        }
        guard hello.index != context.me else {
            return fail(.claimsToBeMe, "it claims this node's own index \(hello.index)")
        }
        guard admits(hello.index) else {
            return fail(.blocked, "\(context.name(hello.index)) is blocked")
        }
        let transcript = Self.transcript(
            role: Self.acceptorRole, nonce: hello.nonce, dialer: hello.index, acceptor: context.me,
            digest: context.digest)
        state = .acceptorAwaitingProof(peer: hello.index)
        return .send([ownHello(), sign(transcript)])
    }

    private mutating func dialerReceived(
        _ hello: ClusterHandshakeMessage.Hello, admits: (UInt16) -> Bool
    ) -> Action {
        guard case .dialer(let peer) = role else { preconditionFailure() }
        if let refusal = checkCommon(hello) {
            return fail(refusal.reason, refusal.detail)
        }
        guard hello.index == peer else {
            return fail(.unexpectedPeer, "dialed \(context.name(peer)), answered by \(context.name(hello.index))")
        }
        guard admits(peer) else {
            return fail(.blocked, "\(context.name(peer)) is blocked")
        }
        state = .dialerAwaitingProof(peerNonce: hello.nonce)
        return .send([])
    }

    /// The checks both sides make on the other's hello.
    private func checkCommon(_ hello: ClusterHandshakeMessage.Hello) -> ClusterRefusal? {
        guard hello.digest == context.digest else {
            let difference = Self.describeDifference(ours: context.entries, theirs: hello.entries)
            return ClusterRefusal(
                reason: .wrongDigest,
                detail: "the peer claiming index \(hello.index) has another book digest: \(difference)")
        }
        guard hello.nonce != nonce else {
            return ClusterRefusal(reason: .malformed, detail: "the peer's nonce repeats this node's")
        }
        return nil
    }

    private mutating func fail(
        _ reason: ClusterTransport.HandshakeFailure, _ detail: String, _ reply: [[UInt8]] = []
    ) -> Action {
        state = .failed
        return .refuse(ClusterRefusal(reason: reason, detail: detail), send: reply)
    }

    private func ownHello() -> [UInt8] {
        ClusterHandshakeMessage.hello(
            .init(digest: context.digest, index: context.me, nonce: nonce, entries: context.entries)
        ).encode()
    }

    private func sign(_ transcript: [UInt8]) -> [UInt8] {
        do {
            let signature = try context.key.signature(for: transcript)
            return ClusterHandshakeMessage.proof(signature: Array(signature.rawRepresentation)).encode()
        } catch {
            // Signing with a valid key only fails when the system's random source does.
            fatalError("ECDSA signing failed: \(error)")
        }
    }

    private func verify(_ signature: [UInt8], _ transcript: [UInt8], by peer: UInt16) -> Bool {
        guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
        return context.publicKeys[Int(peer)].isValidSignature(signature, for: transcript)
    }

    static func transcript(role: UInt8, nonce: [UInt8], dialer: UInt16, acceptor: UInt16, digest: [UInt8])
        -> [UInt8]
    {
        var bytes = domainTag
        bytes.append(role)
        bytes += nonce
        bytes.appendBigEndian(dialer)
        bytes.appendBigEndian(acceptor)
        bytes += digest
        return bytes
    }

    /// Names the entries in which two books differ, for the log line of a digest mismatch.
    static func describeDifference(ours: [ClusterBookEntry], theirs: [ClusterBookEntry]) -> String {
        var parts: [String] = []
        if ours.count != theirs.count {
            parts.append("theirs has \(theirs.count) entries, ours \(ours.count)")
        }
        let differing = (0..<min(ours.count, theirs.count)).filter { ours[$0] != theirs[$0] }
        for position in differing.prefix(3) {
            parts.append(
                "entry \(position) differs: ours \(describe(ours[position])), theirs \(describe(theirs[position]))")
        }
        if differing.count > 3 {
            parts.append("entries \(differing.dropFirst(3).map(String.init).joined(separator: ", ")) differ too")
        }
        if parts.isEmpty {
            return "the entries are the same, so the epoch or an ordering parameter differs"
        }
        return parts.joined(separator: "; ")
    }

    private static func describe(_ entry: ClusterBookEntry) -> String {
        "\(entry.address) key \(fingerprint(entry.publicKeyDER))"
    }

    /// The first 8 bytes of the key's SHA-256, in hex: enough to tell two keys apart in a log.
    static func fingerprint(_ der: [UInt8]) -> String {
        SHA256.hash(data: der).prefix(8).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 0x10 ? "0" + hex : hex
        }.joined()
    }
}
