import Crypto
import NIOCore
import NIOPosix
import Testing

@testable import FoxCluster

#if canImport(Glibc)
    import Glibc
#endif

/// The committed certificates and keys of Fixtures/tls (make-fixtures.py wrote them).
enum TLSFixture {
    static let directory: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast()
        return parts.joined(separator: "/") + "/Fixtures/tls"
    }()

    static func path(_ name: String) -> String { directory + "/" + name }

    static func key(_ fixture: Int) throws -> P256.Signing.PrivateKey {
        try NodeKey.read(from: path("node_\(fixture).key")).privateKey
    }

    /// Two years after the fixtures' expired certificates ran out, 2023-01-01.
    static let afterExpiry: Int64 = 1_672_531_200
    /// While they were valid, 2020-06-01.
    static let beforeExpiry: Int64 = 1_590_969_600
    static var now: Int64 { Int64(time(nil)) }
}

/// A committee of the four fixture keys: member i holds fixture key `fixtures[i]`, since
/// members are ordered by their keys' DER.
struct TLSCommittee {
    var committee: TestCommittee
    var fixtures: [Int]

    init(ports: [Int]) throws {
        let keys = try (0..<4).map { try TLSFixture.key($0) }
        fixtures = (0..<4).sorted {
            keys[$0].publicKey.derRepresentation.lexicographicallyPrecedes(keys[$1].publicKey.derRepresentation)
        }
        committee = TestCommittee(keys: fixtures.map { keys[$0] }, ports: ports)
    }

    /// Member `index`'s transport with TLS from the fixture certificate `certificate` (a prefix
    /// such as "self" or "ca": file `<prefix>_<fixture>.pem`).
    func configuration(
        _ index: Int, certificate: String, root: String? = nil, accepted: [String] = [],
        nowSeconds: Int64 = TLSFixture.now
    ) throws -> ClusterTransport.Configuration {
        var configuration = committee.configuration(index)
        configuration.tls = try ClusterTLS.load(
            certificatePath: TLSFixture.path("\(certificate)_\(fixtures[index]).pem"),
            rootCertificatePath: root.map(TLSFixture.path), acceptedPeerCertificatePaths: accepted.map(TLSFixture.path),
            key: committee.keys[index], members: committee.members, nowSeconds: nowSeconds)
        return configuration
    }
}

@Suite("Cluster transport over TLS")
struct TransportTLSTests {
    /// Exchanges a message between every pair of `nodes` and waits for all of them.
    private func exchange(_ nodes: [TestNode]) async throws {
        for (index, node) in nodes.enumerated() {
            node.transport.broadcast(Array(message: "from \(index)"))
        }
        for (index, node) in nodes.enumerated() {
            try await waitUntil("node \(index) hears every peer", seconds: 10) {
                node.recorder.messages.count == nodes.count - 1
            }
        }
    }

    /// Self-signed certificates of the node keys, no root: the address book is the trust
    /// anchor. Every pair connects and talks; nothing is refused.
    @Test func selfSignedCertificatesOfTheBookKeysConnect() async throws {
        try await withGroup { group in
            let tls = try TLSCommittee(ports: try await reservePorts(4, group: group))
            var nodes: [TestNode] = []
            for index in 0..<4 {
                nodes.append(try await TestNode.start(try tls.configuration(index, certificate: "self"), group: group))
            }
            try await exchange(nodes)
            for node in nodes {
                #expect(node.transport.metrics.handshakeFailures == [:], "\(node.recorder.logs)")
                await node.transport.stop()
            }
        }
    }

    /// With a root certificate, peers whose certificates that CA issued connect; a member whose
    /// certificate another CA issued is refused by TLS on both sides and delivers nothing.
    @Test func aRootCertificateAdmitsOnlyWhatItIssued() async throws {
        try await withGroup { group in
            let tls = try TLSCommittee(ports: try await reservePorts(3, group: group) + [1])
            let honest = [
                try await TestNode.start(try tls.configuration(0, certificate: "ca", root: "ca.pem"), group: group),
                try await TestNode.start(try tls.configuration(1, certificate: "ca", root: "ca.pem"), group: group),
            ]
            let foreign = try await TestNode.start(
                try tls.configuration(2, certificate: "other-ca", root: "ca.pem"), group: group)
            foreign.transport.broadcast(Array(message: "from the other CA"))
            honest[0].transport.send(to: 1, Array(message: "honest"))
            try await waitUntil("the honest message arrives") { honest[1].recorder.messages.count == 1 }
            for node in honest {
                try await waitUntil("TLS refuses the foreign certificate") {
                    node.transport.metrics.handshakeFailures(.tls) >= 1
                }
                #expect(!node.transport.connectedPeers.contains(2))
                #expect(!node.recorder.messages.contains { $0.from == 2 })
            }
            for node in honest + [foreign] { await node.transport.stop() }
        }
    }

    /// An accepted (pinned) self-signed certificate admits the peer presenting it, and only it.
    @Test func anAcceptedCertificateAdmitsItsPeer() async throws {
        try await withGroup { group in
            let tls = try TLSCommittee(ports: try await reservePorts(3, group: group) + [1])
            func accepted(except index: Int) -> [String] {
                (0..<2).filter { $0 != index }.map { "self_\(tls.fixtures[$0]).pem" }
            }
            let nodes = [
                try await TestNode.start(
                    try tls.configuration(0, certificate: "self", accepted: accepted(except: 0)), group: group),
                try await TestNode.start(
                    try tls.configuration(1, certificate: "self", accepted: accepted(except: 1)), group: group),
            ]
            // Node 2's certificate is of its book key, but nobody accepts it.
            let unlisted = try await TestNode.start(
                try tls.configuration(2, certificate: "self", accepted: accepted(except: 2)), group: group)
            try await exchange(nodes)
            for node in nodes {
                try await waitUntil("the unlisted certificate is refused") {
                    node.transport.metrics.handshakeFailures(.tls) >= 1
                }
                #expect(!node.recorder.messages.contains { $0.from == 2 })
            }
            for node in nodes + [unlisted] { await node.transport.stop() }
        }
    }

    /// With the book as the anchor, an expired certificate of a member's own key is refused.
    @Test func anExpiredCertificateIsRefused() async throws {
        try await withGroup { group in
            let tls = try TLSCommittee(ports: try await reservePorts(3, group: group) + [1])
            let nodes = [
                try await TestNode.start(try tls.configuration(0, certificate: "self"), group: group),
                try await TestNode.start(try tls.configuration(1, certificate: "self"), group: group),
            ]
            // Loaded as if in 2020, when it was valid: only the peers' check refuses it.
            let expired = try await TestNode.start(
                try tls.configuration(2, certificate: "expired", nowSeconds: TLSFixture.beforeExpiry), group: group)
            expired.transport.broadcast(Array(message: "expired"))
            for node in nodes {
                try await waitUntil("the expired certificate is refused") {
                    node.transport.metrics.handshakeFailures(.tls) >= 1
                        && node.recorder.logs.contains { $0.contains("it has expired") }
                }
                #expect(!node.recorder.messages.contains { $0.from == 2 })
            }
            for node in nodes + [expired] { await node.transport.stop() }
        }
    }

    /// A node holding two members' keys presents member 2's certificate under TLS but signs the
    /// handshake as member 3: the certificate must be of the key that signed, so it is refused
    /// after the handshake (a relay between two members could otherwise read their traffic).
    @Test func aCertificateOfAnotherMembersKeyIsRefused() async throws {
        try await withGroup { group in
            let tls = try TLSCommittee(ports: try await reservePorts(4, group: group))
            let nodes = [
                try await TestNode.start(try tls.configuration(0, certificate: "self"), group: group),
                try await TestNode.start(try tls.configuration(1, certificate: "self"), group: group),
            ]
            var relay = tls.committee.configuration(3)
            relay.tls = try tls.configuration(2, certificate: "self").tls
            let relayNode = try await TestNode.start(relay, group: group)
            relayNode.transport.broadcast(Array(message: "relayed"))
            for node in nodes {
                try await waitUntil("the certificate of another key is refused") {
                    node.transport.metrics.handshakeFailures(.certificateOfAnotherKey) >= 1
                }
                #expect(!node.recorder.messages.contains { $0.from == 3 })
            }
            for node in nodes + [relayNode] { await node.transport.stop() }
        }
    }

    /// A TLS node and a plain one refuse each other (no silent downgrade).
    @Test func aPlainPeerIsRefused() async throws {
        try await withGroup { group in
            let tls = try TLSCommittee(ports: try await reservePorts(2, group: group) + [1, 2])
            let secure = try await TestNode.start(try tls.configuration(0, certificate: "self"), group: group)
            let plain = try await TestNode.start(tls.committee.configuration(1), group: group)
            plain.transport.send(to: 0, Array(message: "in clear"))
            secure.transport.send(to: 1, Array(message: "encrypted"))
            try await waitUntil("the TLS node refuses the plain one") {
                secure.transport.metrics.handshakeFailures(.tls) >= 2
            }
            #expect(secure.recorder.messages.isEmpty && plain.recorder.messages.isEmpty)
            for node in [secure, plain] { await node.transport.stop() }
        }
    }

    /// Start-up refusals name the file and the problem.
    @Test func unusableFilesAreNamed() throws {
        let tls = try TLSCommittee(ports: [1, 2, 3, 4])
        func loadError(_ certificate: String, root: String? = nil, now: Int64 = TLSFixture.now) -> String {
            do {
                _ = try ClusterTLS.load(
                    certificatePath: TLSFixture.path(certificate), rootCertificatePath: root.map(TLSFixture.path),
                    acceptedPeerCertificatePaths: [], key: tls.committee.keys[0], members: tls.committee.members,
                    nowSeconds: now)
                return "loaded"
            } catch {
                return error.description
            }
        }
        let own = tls.fixtures[0]
        let other = tls.fixtures[1]
        #expect(loadError("self_\(own).pem") == "loaded")
        #expect(loadError("self_\(other).pem").contains("is not of this node's key"))
        #expect(loadError("stranger.pem").contains("stranger.pem: the certificate is not of this node's key"))
        #expect(loadError("expired_\(own).pem", now: TLSFixture.afterExpiry).contains("has expired"))
        #expect(loadError("self_\(own).pem", now: 1_500_000_000).contains("not valid yet"))
        #expect(loadError("missing.pem").contains("--cluster-cert \(TLSFixture.path("missing.pem")): no such file"))
        #expect(loadError("node_\(own).key").contains("not a PEM certificate"))
        #expect(loadError("self_\(own).pem", root: "node_0.key").contains("--cluster-root-cert"))
    }
}
