import Crypto
import NIOCore
import NIOPosix
import Testing

@testable import FoxCluster

/// Transports on real sockets (127.0.0.1, free ports). Every wait polls with a deadline; none
/// sleeps a fixed time.
@Suite("Cluster transport over TCP")
struct TransportClusterTests {
    /// Four transports: every node sends to every other one and broadcasts; each message
    /// arrives once, from the right sender, in the order sent. Peer states report the outbound
    /// connections.
    @Test func fourNodesExchangeMessagesAndBroadcastsReachEveryone() async throws {
        try await withGroup { group in
            let committee = TestCommittee(ports: try await reservePorts(4, group: group))
            var nodes: [TestNode] = []
            for index in 0..<4 {
                nodes.append(try await TestNode.start(committee.configuration(index), group: group))
            }
            for (index, node) in nodes.enumerated() {
                for peer in 0..<4 where peer != index {
                    for sequence in 0..<3 {
                        node.transport.send(to: UInt16(peer), Array(message: "\(index)->\(peer) #\(sequence)"))
                    }
                }
                node.transport.broadcast(Array(message: "broadcast from \(index)"))
            }
            for (index, node) in nodes.enumerated() {
                try await waitUntil("node \(index) has its 12 messages") { node.recorder.messages.count == 12 }
            }
            for (index, node) in nodes.enumerated() {
                for peer in 0..<4 where peer != index {
                    #expect(
                        node.recorder.messages(from: UInt16(peer)) == [
                            Array(message: "\(peer)->\(index) #0"), Array(message: "\(peer)->\(index) #1"),
                            Array(message: "\(peer)->\(index) #2"), Array(message: "broadcast from \(peer)"),
                        ])
                }
                try await waitUntil("node \(index) reports 3 connected peers") {
                    node.transport.connectedPeers.count == 3
                        && node.recorder.peerStates.filter { $0.1 }.count == 3
                }
                let metrics = node.transport.metrics
                #expect(metrics.framesSent == 12 && metrics.framesReceived == 12)
                #expect(metrics.framesDropped == 0)
                let refusals = node.recorder.logs.filter { $0.contains("refused") || $0.contains("handshake") }
                #expect(metrics.handshakeFailures == [:], "\(refusals)")
            }
            for node in nodes { await node.transport.stop() }
        }
    }

    /// Port 0 resolves to the port actually bound.
    @Test func boundAddressResolvesPortZero() async throws {
        try await withGroup(threads: 1) { group in
            var configuration = TestCommittee(ports: [1, 2]).configuration(0)
            configuration.listenPort = 0
            let node = TestNode(configuration, group: group)
            #expect(node.transport.boundAddress == nil)
            try await node.transport.start()
            let port = try #require(node.transport.boundAddress?.port)
            #expect(port > 0)
            await node.transport.stop()
            #expect(node.transport.boundAddress == nil)
        }
    }

    /// Node 2 read a book in which entry 1 has another address, so its digest differs. Both
    /// honest nodes refuse it, in both directions, and their logs name entry 1; node 2 never
    /// delivers and is never delivered to.
    @Test func peerWithAnotherBookDigestIsRefusedNamingTheEntry() async throws {
        try await withGroup { group in
            let committee = TestCommittee(ports: try await reservePorts(3, group: group))
            let honest = [
                try await TestNode.start(committee.configuration(0), group: group),
                try await TestNode.start(committee.configuration(1), group: group),
            ]
            var otherEntries = committee.entries
            otherEntries[1].address = "127.0.0.1:1"
            var otherBook = committee.configuration(2)
            otherBook.bookEntries = otherEntries
            otherBook.bookDigest = TestCommittee.digest(otherEntries)
            let stranger = try await TestNode.start(otherBook, group: group)
            stranger.transport.broadcast(Array(message: "from another book"))
            honest[0].transport.send(to: 2, Array(message: "to another book"))

            for node in honest {
                try await waitUntil("refusals in both directions") {
                    node.transport.metrics.handshakeFailures(.wrongDigest) >= 2
                }
                let refusals = node.recorder.logs.filter { $0.contains("wrong digest") }
                #expect(refusals.contains { $0.contains("entry 1 differs") && $0.contains("127.0.0.1:1") })
                #expect(!node.transport.connectedPeers.contains(2))
            }
            // The stranger learns the mismatch from the honest nodes' replies, and logs it too.
            try await waitUntil("the stranger logs the mismatch") {
                stranger.recorder.logs.contains { $0.contains("wrong digest") && $0.contains("entry 1 differs") }
            }
            #expect(stranger.transport.connectedPeers.isEmpty)
            #expect(honest.allSatisfy { $0.recorder.messages.isEmpty })
            #expect(stranger.recorder.messages.isEmpty)
            for node in honest + [stranger] { await node.transport.stop() }
        }
    }

    /// Node 2 claims the book's key for index 2 but signs with another one. Its proofs fail
    /// in both roles, so nothing it sends is delivered and it is never a connected peer.
    @Test func peerSigningWithAKeyItDoesNotHoldIsRefused() async throws {
        try await withGroup { group in
            let committee = TestCommittee(ports: try await reservePorts(3, group: group))
            let honest = [
                try await TestNode.start(committee.configuration(0), group: group),
                try await TestNode.start(committee.configuration(1), group: group),
            ]
            var impostorConfiguration = committee.configuration(2)
            impostorConfiguration.key = P256.Signing.PrivateKey()
            let impostor = try await TestNode.start(impostorConfiguration, group: group)
            impostor.transport.broadcast(Array(message: "forged"))

            for node in honest {
                // Twice as acceptor and dialer each: the impostor's reconnects got no further.
                try await waitUntil("bad signatures refused in both roles") {
                    node.transport.metrics.handshakeFailures(.badSignature) >= 4
                }
                #expect(!node.transport.connectedPeers.contains(2))
                #expect(node.recorder.messages.isEmpty)
                #expect(node.recorder.logs.contains { $0.contains("bad signature") })
            }
            #expect(impostor.recorder.logs.contains { $0.contains("is not the one its book entry gives") })
            // The honest pair still talks.
            honest[0].transport.send(to: 1, Array(message: "honest"))
            try await waitUntil("the honest message arrives") { honest[1].recorder.messages.count == 1 }
            for node in honest + [impostor] { await node.transport.stop() }
        }
    }

    /// A frame longer than the receiver's maxFrameBytes closes the connection with a logged
    /// reason; the sender reconnects and later messages arrive.
    @Test func oversizeFrameClosesTheConnection() async throws {
        try await withGroup { group in
            let committee = TestCommittee(ports: try await reservePorts(2, group: group))
            let sender = try await TestNode.start(committee.configuration(0), group: group)
            var smallFrames = committee.configuration(1)
            smallFrames.maxFrameBytes = 1024
            let receiver = try await TestNode.start(smallFrames, group: group)
            try await waitUntil("connected") { sender.transport.connectedPeers == [1] }

            sender.transport.send(to: 1, [UInt8](repeating: 7, count: 2000))
            try await waitUntil("the receiver closes") { receiver.transport.metrics.oversizeFrames == 1 }
            #expect(
                receiver.recorder.logs.contains {
                    $0.contains("a frame of 2000 bytes exceeds the limit of 1024 bytes")
                })
            try await waitUntil("the sender reconnects") { sender.transport.metrics.peer(1).connections == 2 }
            sender.transport.send(to: 1, Array(message: "small"))
            try await waitUntil("the small message arrives") { receiver.recorder.messages.count == 1 }
            #expect(receiver.recorder.messages(from: 0) == [Array(message: "small")])
            await sender.transport.stop()
            await receiver.transport.stop()
        }
    }

    /// Messages sent while the peer is down wait in the queue and arrive once it starts, both
    /// before its first start and after a restart (the sender redials with backoff).
    @Test func messagesQueuedWhileAPeerIsDownArriveWhenItStarts() async throws {
        try await withGroup { group in
            let committee = TestCommittee(ports: try await reservePorts(2, group: group))
            let sender = try await TestNode.start(committee.configuration(0), group: group)
            for sequence in 0..<3 { sender.transport.send(to: 1, Array(message: "early \(sequence)")) }
            try await waitUntil("a few dials failed") {
                sender.recorder.logs.filter { $0.contains("cannot connect") }.count >= 2
            }

            let receiver = try await TestNode.start(committee.configuration(1), group: group)
            try await waitUntil("the early messages arrive") { receiver.recorder.messages.count == 3 }
            #expect(receiver.recorder.messages(from: 0) == (0..<3).map { Array(message: "early \($0)") })

            await receiver.transport.stop()
            try await waitUntil("the sender sees the peer leave") { sender.transport.connectedPeers.isEmpty }
            for sequence in 0..<3 { sender.transport.send(to: 1, Array(message: "late \(sequence)")) }
            #expect(sender.transport.metrics.peer(1).framesQueued == 3)

            let restarted = try await TestNode.start(committee.configuration(1), group: group)
            try await waitUntil("the late messages arrive") { restarted.recorder.messages.count == 3 }
            #expect(restarted.recorder.messages(from: 0) == (0..<3).map { Array(message: "late \($0)") })
            #expect(sender.recorder.peerStates.map(\.1) == [true, false, true])
            await sender.transport.stop()
            await restarted.transport.stop()
        }
    }

    /// A node waiting out a long reconnect backoff to a peer that was down dials it at once
    /// when the peer connects to it: a restarted node hears from its peers in milliseconds,
    /// not after the backoff (up to 5 s, 7.5 s with jitter, by default; 20 s here).
    @Test func aPeerThatConnectsIsDialedBackAtOnce() async throws {
        try await withGroup { group in
            let committee = TestCommittee(ports: try await reservePorts(2, group: group))
            var patient = committee.configuration(0)
            patient.reconnectBackoff = .init(initialMillis: 20_000, maxMillis: 20_000)
            let sender = try await TestNode.start(patient, group: group)
            try await waitUntil("the first dial failed") {
                sender.recorder.logs.contains { $0.contains("cannot connect") }
            }
            sender.transport.send(to: 1, Array(message: "while you were away"))
            let started = ContinuousClock.now
            let receiver = try await TestNode.start(committee.configuration(1), group: group)
            try await waitUntil("the message arrives", seconds: 10) { receiver.recorder.messages.count == 1 }
            #expect(ContinuousClock.now - started < .seconds(10), "well before the 20 s backoff")
            await sender.transport.stop()
            await receiver.transport.stop()
        }
    }

    /// Blocking a peer stops delivery both ways (its connections close, it is refused, messages
    /// to it are dropped); unblocking restores both directions.
    @Test func setBlockedStopsTrafficBothWaysAndUnblockingRestoresIt() async throws {
        try await withGroup { group in
            let committee = TestCommittee(ports: try await reservePorts(2, group: group))
            let a = try await TestNode.start(committee.configuration(0), group: group)
            let b = try await TestNode.start(committee.configuration(1), group: group)
            try await waitUntil("connected both ways") {
                a.transport.connectedPeers == [1] && b.transport.connectedPeers == [0]
            }

            a.transport.setBlocked([1])
            #expect(a.transport.connectedPeers.isEmpty)
            try await waitUntil("b was refused while blocked") {
                a.transport.metrics.handshakeFailures(.blocked) >= 1 && b.transport.connectedPeers.isEmpty
            }
            a.transport.send(to: 1, Array(message: "a during the block"))
            b.transport.send(to: 0, Array(message: "b during the block"))
            try await waitUntil("b was refused again after sending") {
                a.transport.metrics.handshakeFailures(.blocked) >= 3
            }
            #expect(a.recorder.messages.isEmpty && b.recorder.messages.isEmpty)
            #expect(a.transport.metrics.peer(1).framesDroppedBlocked == 1)

            a.transport.setBlocked([])
            a.transport.send(to: 1, Array(message: "a after the block"))
            // b's message waited in b's queue; a's was dropped.
            try await waitUntil("both directions deliver again") {
                a.recorder.messages.count == 1 && b.recorder.messages.count == 1
            }
            #expect(a.recorder.messages(from: 1) == [Array(message: "b during the block")])
            #expect(b.recorder.messages(from: 0) == [Array(message: "a after the block")])
            await a.transport.stop()
            await b.transport.stop()
        }
    }

    /// With the peer down, a queue bounded to 1000 bytes keeps the newest frames that fit and
    /// drops the oldest: 20 frames of 104 bytes (with headers) leave the last 9.
    @Test func fullQueueDropsTheOldestFrames() async throws {
        try await withGroup { group in
            let committee = TestCommittee(ports: try await reservePorts(2, group: group))
            var bounded = committee.configuration(0)
            bounded.maxFrameBytes = 500
            bounded.maxQueuedBytesPerPeer = 1000
            let sender = try await TestNode.start(bounded, group: group)
            for sequence in 0..<20 {
                sender.transport.send(to: 1, [UInt8(sequence)] + [UInt8](repeating: 0, count: 99))
            }
            let queued = sender.transport.metrics.peer(1)
            #expect(queued.framesQueued == 9 && queued.bytesQueued == 936 && queued.framesDroppedQueueFull == 11)

            let receiver = try await TestNode.start(committee.configuration(1), group: group)
            try await waitUntil("the kept frames arrive") { receiver.recorder.messages.count == 9 }
            #expect(receiver.recorder.messages(from: 0).map(\.[0]) == Array(11..<20))
            await sender.transport.stop()
            await receiver.transport.stop()
        }
    }
}
