import Crypto
import FoxBrokerCore
import NIOCore

@testable import FoxBroker
@testable import FoxBrokerStore
@testable import FoxCluster

/// `cluster`: what a peer's bytes reach on a cluster link besides the consensus messages: the
/// transport's framing (`ClusterFrameReader`) and handshake (`ClusterHandshakeMessage`, the
/// handshake state machine of both roles), and the broker's payloads (`StateTransferMessage`,
/// `AcknowledgementBatch`, `RowsPosition`). The selector byte picks:
///
/// - 0: a stream for the frame reader in reads of sizes the input chooses (2 bytes), with the
///   handshake's limit for the first frame and another after it (1 byte), against a model of the
///   framing (u32 length, payload); each frame is also read as a handshake message.
/// - 1: a handshake message (decode, encode, decode).
/// - 2: a state transfer message; 3: an acknowledgement batch; 4: a rows position. These decoders
///   are strict: what decodes is exactly its encoding.
/// - 5, 6: frames (as for 0) for the handshake state machine of node 0 of a three-node book, as
///   the acceptor and as the dialer of node 1, with a fixed nonce (so that the seeds can carry
///   valid proofs). Every frame the machine sends must decode, and it authenticates only the peer
///   whose key signed the proof.
let clusterHarness = Harness(
    name: "cluster",
    summary: "cluster framing and handshake, state transfer, acknowledgement batches (decode is canonical)",
    run: fuzzCluster, seeds: clusterSeeds)

@Sendable func fuzzCluster(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let selector = input.byte() % 7
    switch selector {
    case 0:
        let limits = input.byte()
        let sizes = [input.byte(), input.byte()]
        let frameLimits = [16, 4096, 1 << 20]
        let first = frameLimits[Int(limits & 0x03) % 3]
        let later = frameLimits[Int(limits >> 2) % 3]
        for frame in checkFrameReader(input.rest(), first: first, later: later, sizes: sizes) {
            checkHandshakeMessage(frame)
        }
    case 1:
        checkHandshakeMessage(input.rest())
    case 2:
        let rest = input.rest()
        guard let message = StateTransferMessage.decode(rest) else { return }
        require(message.encoded == rest, "cluster: the state transfer message \(message) is not canonical")
    case 3:
        let rest = input.rest()
        guard let events = AcknowledgementBatch.decode(rest) else { return }
        require(
            events.allSatisfy(\.isBatchedAcknowledgement) && (2...AcknowledgementBatch.countMax).contains(events.count),
            "cluster: a batch of \(events.count) events that are not all acknowledgements decoded")
        require(AcknowledgementBatch.encode(events) == rest, "cluster: the acknowledgement batch is not canonical")
    case 4:
        let rest = input.rest()
        guard let position = RowsPosition(encoded: rest) else { return }
        require(position.encoded == rest, "cluster: the rows position \(position) is not canonical")
    default:
        let sizes = [input.byte(), input.byte()]
        let frames = checkFrameReader(input.rest(), first: 1 << 20, later: 1 << 20, sizes: sizes)
        runHandshake(frames, asDialer: selector == 6)
    }
}

/// Feeds `stream` to a frame reader in reads of `sizes`, raising the limit from `first` to
/// `later` after the first frame (as a connection does after its handshake), and compares the
/// frames with the model's. Returns the frames.
private func checkFrameReader(_ stream: [UInt8], first: Int, later: Int, sizes: [UInt8]) -> [[UInt8]] {
    // The model.
    var expected: [[UInt8]] = []
    var expectError = false
    var offset = 0
    while stream.count - offset >= 4 {
        let length = Int(stream[offset..<offset + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        guard length <= (expected.isEmpty ? first : later) else {
            expectError = true
            break
        }
        guard stream.count - offset - 4 >= length else { break }
        expected.append(Array(stream[offset + 4..<offset + 4 + length]))
        offset += 4 + length
    }
    // The reader.
    var reader = ClusterFrameReader(maxFrameBytes: first)
    var frames: [[UInt8]] = []
    var failed = false
    reading: for read in chunks(of: stream, sizes: sizes) {
        reader.append(ByteBuffer(bytes: read))
        while true {
            do {
                guard let frame = try reader.next() else { break }
                frames.append(Array(frame.readableBytesView))
                reader.maxFrameBytes = later
            } catch {
                failed = true
                break reading
            }
        }
    }
    require(frames == expected, "cluster: the reader cut \(frames.count) frames, the model \(expected.count)")
    require(failed == expectError, "cluster: the reader \(failed ? "refused" : "accepted") an oversize frame")
    if !failed {
        require(
            reader.bufferedBytes == stream.count - offset, "cluster: the reader keeps \(reader.bufferedBytes) bytes")
    }
    return frames
}

private func checkHandshakeMessage(_ bytes: [UInt8]) {
    guard let message = try? ClusterHandshakeMessage.decode(ByteBuffer(bytes: bytes)) else { return }
    if case .hello(let hello) = message {
        // Addresses are read with invalid UTF-8 replaced: the encoding may grow past the field.
        guard hello.entries.allSatisfy({ $0.address.utf8.count <= UInt16.max }) else { return }
    }
    let encoded = message.encode()
    guard let again = try? ClusterHandshakeMessage.decode(ByteBuffer(bytes: encoded)) else {
        fatalError("cluster: the handshake message \(message) encodes to bytes that do not decode")
    }
    require(again == message, "cluster: round trip changed the handshake message \(message) into \(again)")
    require(again.encode() == encoded, "cluster: the handshake message is not encoded canonically")
}

// MARK: The handshake state machine

/// Node 0 of a book of three, keys fixed (`P256` scalars 1...1, 2...2, 3...3 by book position),
/// as the committee and the handshake context see them.
struct HandshakeFixture: @unchecked Sendable {
    let book: AddressBook
    let keys: [P256.Signing.PrivateKey]
    let entries: [ClusterBookEntry]
    let nonce = [UInt8](repeating: 0x11, count: ClusterHandshakeMessage.nonceBytes)

    static let shared = HandshakeFixture()

    init() {
        let scalars = (1...3).map { [UInt8](repeating: UInt8($0), count: 32) }
        let bookKeys = scalars.map { scalar in
            must("a P-256 key") { try P256.Signing.PrivateKey(rawRepresentation: scalar) }
        }
        let entries = zip(bookKeys, ["127.0.0.1:19793", "127.0.0.1:19794", "127.0.0.1:19795"]).map {
            AddressBook.Entry(publicKeyDER: NodePublicKey.der(of: $0.0.publicKey), address: $0.1)
        }
        book = must("the fixture's address book") { try AddressBook(entries: entries) }
        // By committee index.
        keys = book.members.map { bookKeys[$0.bookPosition] }
        self.entries = book.entries.map { ClusterBookEntry(address: $0.address, publicKeyDER: $0.publicKeyDER) }
    }

    func context(me: UInt16) -> ClusterHandshakeContext {
        ClusterHandshakeContext(
            me: me, members: book.members, publicKeys: keys.map(\.publicKey), key: keys[Int(me)], digest: book.digest,
            entries: entries)
    }

    /// A proof as `signer` makes it for the transcript of `role` (0x01 acceptor, 0x02 dialer).
    func proof(role: UInt8, signer: UInt16, nonce: [UInt8], dialer: UInt16, acceptor: UInt16) -> [UInt8] {
        let transcript = ClusterHandshakeStateMachine.transcript(
            role: role, nonce: nonce, dialer: dialer, acceptor: acceptor, digest: book.digest)
        let signature = must("a signature") { try keys[Int(signer)].signature(for: transcript) }
        return ClusterHandshakeMessage.proof(signature: Array(signature.rawRepresentation)).encode()
    }

    func hello(index: UInt16, nonce: [UInt8]) -> [UInt8] {
        ClusterHandshakeMessage.hello(.init(digest: book.digest, index: index, nonce: nonce, entries: entries)).encode()
    }
}

private func runHandshake(_ frames: [[UInt8]], asDialer: Bool) {
    let fixture = HandshakeFixture.shared
    var machine = ClusterHandshakeStateMachine(
        role: asDialer ? .dialer(peer: 1) : .acceptor, context: fixture.context(me: 0), nonce: fixture.nonce)
    func checkSent(_ payloads: [[UInt8]]) {
        for payload in payloads {
            require(
                (try? ClusterHandshakeMessage.decode(ByteBuffer(bytes: payload))) != nil,
                "cluster: the handshake sent a frame that does not decode")
        }
    }
    checkSent(machine.start())
    for frame in frames {
        switch machine.receive(ByteBuffer(bytes: frame), admits: { $0 != 2 }) {
        case .send(let payloads):
            checkSent(payloads)
        case .authenticated(let peer, let payloads):
            checkSent(payloads)
            require(peer == 1, "cluster: the handshake authenticated node \(peer)")
            return
        case .refuse(_, let payloads):
            checkSent(payloads)
            return
        }
    }
}

// MARK: Seeds

@Sendable func clusterSeeds() -> [Seed] {
    let fixture = HandshakeFixture.shared
    func frame(_ payload: [UInt8]) -> [UInt8] { [UInt8](bigEndian: UInt32(payload.count)) + payload }
    let peerNonce = [UInt8](repeating: 0x22, count: ClusterHandshakeMessage.nonceBytes)
    let dialerHello = fixture.hello(index: 1, nonce: peerNonce)
    // Node 1 dialing node 0: its hello, then its proof over node 0's nonce.
    let dialerProof = fixture.proof(role: 0x02, signer: 1, nonce: fixture.nonce, dialer: 1, acceptor: 0)
    // Node 1 answering node 0's dial: its hello, then its proof over node 0's nonce.
    let acceptorProof = fixture.proof(role: 0x01, signer: 1, nonce: fixture.nonce, dialer: 0, acceptor: 1)
    let position = RowsPosition(
        commitIndex: 100, logIndex: 420, digest: [UInt8](repeating: 0xAB, count: 32),
        chain: [UInt8](repeating: 0xCD, count: 32))
    let connection = ConnectionID(node: 1, incarnation: 2, local: 3)
    let acknowledgements = AcknowledgementBatch.encode([
        .pubAck(connection, packetIdentifier: 1), .pubRec(connection, packetIdentifier: 2, reasonCode: .success),
        .pubRel(connection, packetIdentifier: 3), .pubComp(connection, packetIdentifier: 4),
    ])
    let transfers: [(String, StateTransferMessage)] = [
        ("offer-request", .offerRequest),
        ("offer", .offer(position)),
        ("offer-none", .offer(nil)),
        ("chunk-request", .chunkRequest(position, table: .sessions, after: nil)),
        ("chunk-request-after", .chunkRequest(position, table: .retained, after: Array("a/b".utf8))),
        (
            "chunk",
            .chunk(
                position, table: .sessions,
                rows: [
                    TransferRow(table: .sessions, key: Array("c1".utf8), value: [1, 2, 3]),
                    TransferRow(table: .sessions, key: Array("c2".utf8), value: []),
                ], complete: true)
        ),
        ("chunk-moved", .chunk(position, table: .meta, rows: nil, complete: false)),
    ]
    var seeds = [
        Seed("frames-handshake", [0, 0x0A, 0, 0] + frame(dialerHello) + frame(dialerProof)),
        Seed("frames-small-reads", [0, 0x06, 3, 17] + frame(dialerHello) + frame([]) + frame([1, 2, 3])),
        Seed("frames-oversize", [0, 0x00, 0, 0] + frame([UInt8](repeating: 7, count: 20))),
        Seed("hello", [1] + dialerHello),
        Seed("proof", [1] + dialerProof),
        Seed("acknowledgements", [3] + acknowledgements),
        Seed("rows-position", [4] + position.encoded),
        Seed("acceptor-authenticates", [5, 0, 0] + frame(dialerHello) + frame(dialerProof)),
        Seed("acceptor-blocked-peer", [5, 0, 0] + frame(fixture.hello(index: 2, nonce: peerNonce))),
        Seed("dialer-authenticates", [6, 0, 0] + frame(dialerHello) + frame(acceptorProof)),
    ]
    seeds += transfers.map { Seed("state-transfer-" + $0.0, [2] + $0.1.encoded) }
    return seeds
}
