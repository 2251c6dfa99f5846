import Foundation
import FoxStore
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// Users and access rules as ordered entries: the core's copy and its encoding, the reconciler
/// that tells an operator's edit from the cluster's order, and the database copy.
@Suite struct ClusterAdminTests {
    static let aliceHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
    static let bobHash = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$b3RoZXJoYXNob3RoZXJoYXNo"

    static func rule(_ subject: OrderedAdmin.Rule.Subject, publish: Bool = true, _ filter: String, allow: Bool = true)
        -> OrderedAdmin.Rule
    {
        OrderedAdmin.Rule(subject: subject, publish: publish, topicFilter: filter, allow: allow)
    }

    static func entry(_ node: UInt32, _ sequence: UInt64, _ change: AdminChange) -> BrokerEvent {
        .admin(AdminEntry(node: node, sequence: sequence, change: change))
    }

    // MARK: The core's copy

    // Goal: every change survives the log's encoding, and an admin entry must come from the
    // node it names (the origin check), may be refused (it grows the state).
    @Test func adminEntriesRoundTripThroughTheCodec() throws {
        let events: [BrokerEvent] = [
            Self.entry(2, 7, .setUser(name: "alice", passwordHash: Self.aliceHash)),
            Self.entry(0, 1, .removeUser(name: "bob")),
            Self.entry(
                3, 9,
                .setRules([
                    Self.rule(.user("alice"), "a/%u/#"), Self.rule(.anonymous, publish: false, "#", allow: false),
                    Self.rule(.allUsers, "x"),
                ])),
        ]
        for event in events {
            #expect(try BrokerEvent.decode(event.encoded) == event)
            #expect(!event.isNeverRefused)
        }
        #expect(events[0].originNode == 2)
        var truncated = events[2].encoded
        truncated.moveWriterIndex(to: truncated.writerIndex - 1)
        #expect(throws: RecordDecodeError.self) { try BrokerEvent.decode(truncated) }
    }

    // Goal: removing a user removes its rules; a rule list naming an unknown user drops that
    // rule (the database's foreign key), so every node ends with the same list; each node's
    // sequence is the greatest applied.
    @Test func applyKeepsRulesConsistentWithUsers() {
        let broker = BrokerHarness()
        broker.apply(Self.entry(1, 1, .setUser(name: "alice", passwordHash: Self.aliceHash)))
        broker.apply(
            Self.entry(1, 2, .setRules([Self.rule(.user("alice"), "a/#"), Self.rule(.user("ghost"), "g/#")])))
        #expect(broker.state.admin.rules == [Self.rule(.user("alice"), "a/#")])
        broker.apply(Self.entry(2, 5, .setUser(name: "bob", passwordHash: Self.bobHash)))
        broker.apply(Self.entry(2, 4, .removeUser(name: "alice")))
        #expect(broker.state.admin.users == ["bob": Self.bobHash])
        #expect(broker.state.admin.rules.isEmpty)
        #expect(broker.state.admin.sequence(of: 1) == 2)
        #expect(broker.state.admin.sequence(of: 2) == 5, "a lower number later does not lower it")
        #expect(broker.state.admin.revision == 4)
    }

    // Goal: the ordered copy is part of the meta row (so of checkpoints, the digest and state
    // transfer); a meta row without it, as every store before it holds, still decodes, and a
    // state without admin entries writes the same bytes as before.
    @Test func metaCarriesTheOrderedCopy() throws {
        let broker = BrokerHarness()
        let before = broker.state.meta(appliedIndex: 3).encoded
        let digestBefore = broker.state.stateDigest(appliedIndex: 3)
        #expect(try StateMeta.decode(before).admin == OrderedAdmin())
        broker.apply(Self.entry(0, 1, .setUser(name: "alice", passwordHash: Self.aliceHash)))
        broker.apply(Self.entry(0, 2, .setRules([Self.rule(.allUsers, publish: false, "#")])))
        let meta = broker.state.meta(appliedIndex: 3)
        let decoded = try StateMeta.decode(meta.encoded)
        #expect(decoded.admin == broker.state.admin)
        #expect(decoded.admin.users == ["alice": Self.aliceHash])
        #expect(meta.encoded.readableBytes > before.readableBytes)
        #expect(broker.state.stateDigest(appliedIndex: 3) != digestBefore)
        let loaded = try BrokerState.load(meta: decoded, sessions: [], retained: [], cursors: [])
        #expect(loaded.admin == broker.state.admin)
    }

    // MARK: The reconciler

    static func content(_ users: [String: String], _ rules: [AccessRule] = []) -> AdminContent {
        AdminContent(users: users, rules: rules)
    }

    static func accessRule(_ user: String, _ filter: String) -> AccessRule {
        AccessRule(id: 0, subject: .user(user), action: .publish, topicFilter: filter, permission: .allow)
    }

    // Goal: an edit made on this node (the database differs from the base) is ordered with
    // this node's next sequence numbers; nothing is copied over it while it waits; once the
    // ordered copy has it (this node's number reached), the ordered content is copied in.
    @Test func aLocalEditIsOrderedThenCopied() {
        var reconciler = AdminReconciler()
        let base = Self.content([:])
        let local = Self.content(["alice": Self.aliceHash], [Self.accessRule("alice", "a/#")])
        var ordered = OrderedAdmin(sequences: [4: 2])
        let decision = reconciler.decide(me: 4, local: local, base: base, ordered: ordered, nowMillis: 1000)
        #expect(
            decision
                == .submit(
                    [
                        .setUser(name: "alice", passwordHash: Self.aliceHash),
                        .setRules([Self.rule(.user("alice"), "a/#")]),
                    ], firstSequence: 3))
        // Another node's change is ordered first: still waiting, nothing copied over the edit.
        ordered.apply(AdminEntry(node: 1, sequence: 1, change: .setUser(name: "bob", passwordHash: Self.bobHash)))
        #expect(reconciler.decide(me: 4, local: local, base: base, ordered: ordered, nowMillis: 2000) == .nothing)
        ordered.apply(AdminEntry(node: 4, sequence: 3, change: .setUser(name: "alice", passwordHash: Self.aliceHash)))
        ordered.apply(AdminEntry(node: 4, sequence: 4, change: .setRules([Self.rule(.user("alice"), "a/#")])))
        let merged = Self.content(
            ["alice": Self.aliceHash, "bob": Self.bobHash], [Self.accessRule("alice", "a/#")])
        #expect(reconciler.decide(me: 4, local: local, base: base, ordered: ordered, nowMillis: 3000) == .copy(merged))
        // Copied: base and database equal the ordered content; nothing more to do.
        #expect(reconciler.decide(me: 4, local: merged, base: merged, ordered: ordered, nowMillis: 4000) == .nothing)
    }

    // Goal: a change ordered elsewhere is copied in when this node has no edit of its own;
    // an edit that is already in the ordered copy (the same user added on two nodes) is not
    // ordered again.
    @Test func anotherNodesChangeIsCopiedAndAnEqualEditIsNotOrderedTwice() {
        var reconciler = AdminReconciler()
        var ordered = OrderedAdmin()
        ordered.apply(AdminEntry(node: 1, sequence: 1, change: .setUser(name: "bob", passwordHash: Self.bobHash)))
        let empty = Self.content([:])
        #expect(
            reconciler.decide(me: 0, local: empty, base: empty, ordered: ordered, nowMillis: 0)
                == .copy(Self.content(["bob": Self.bobHash])))
        let sameEdit = Self.content(["bob": Self.bobHash])
        #expect(
            reconciler.decide(me: 0, local: sameEdit, base: empty, ordered: ordered, nowMillis: 0)
                == .copy(Self.content(["bob": Self.bobHash])))
    }

    // Goal: a removal on this node is ordered as a removal (not lost as "the base had it");
    // after this node's changes are ordered, a later conflicting change from another node wins
    // everywhere (it is copied in, not fought over).
    @Test func removalsAreOrderedAndTheOrderDecidesConflicts() {
        var reconciler = AdminReconciler()
        let base = Self.content(["alice": Self.aliceHash])
        let local = Self.content([:])
        var ordered = OrderedAdmin(users: ["alice": Self.aliceHash])
        #expect(
            reconciler.decide(me: 2, local: local, base: base, ordered: ordered, nowMillis: 0)
                == .submit([.removeUser(name: "alice")], firstSequence: 1))
        ordered.apply(AdminEntry(node: 2, sequence: 1, change: .removeUser(name: "alice")))
        // Node 3 set alice again after: ordered later, so it is the truth.
        ordered.apply(AdminEntry(node: 3, sequence: 1, change: .setUser(name: "alice", passwordHash: Self.bobHash)))
        #expect(
            reconciler.decide(me: 2, local: local, base: base, ordered: ordered, nowMillis: 10)
                == .copy(Self.content(["alice": Self.bobHash])))
    }

    // Goal: a submission never seen ordered (a refused or lost entry) is made again after
    // `resubmitMillis`, not waited for for ever.
    @Test func aLostSubmissionIsMadeAgain() {
        var reconciler = AdminReconciler()
        reconciler.resubmitMillis = 100
        let base = Self.content([:])
        let local = Self.content(["alice": Self.aliceHash])
        let ordered = OrderedAdmin()
        let first = reconciler.decide(me: 0, local: local, base: base, ordered: ordered, nowMillis: 0)
        #expect(first == .submit([.setUser(name: "alice", passwordHash: Self.aliceHash)], firstSequence: 1))
        #expect(reconciler.decide(me: 0, local: local, base: base, ordered: ordered, nowMillis: 99) == .nothing)
        #expect(reconciler.decide(me: 0, local: local, base: base, ordered: ordered, nowMillis: 100) == first)
    }

    // MARK: The database copy

    // Goal: the copy replaces users and rules (in order) and records the base, in one
    // transaction; it is refused, writing nothing, when the database moved since it was read
    // (an operator's edit not ordered yet is never overwritten).
    @Test func theDatabaseCopyIsRefusedOverAnUnreadEdit() throws {
        let path = FileManager.default.temporaryDirectory.path + "/foxmq-cluster-admin-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: path) }
        let database = try AdminDatabase.open(directory: path)
        try database.addUser(name: "old", passwordHash: Self.aliceHash)
        #expect(try database.clusterBase() == nil)
        let content = Self.content(
            ["alice": Self.aliceHash, "bob": Self.bobHash],
            [Self.accessRule("bob", "b/#"), Self.accessRule("alice", "a/#")])
        let stale = try database.snapshot().revision
        try database.addUser(name: "edit", passwordHash: Self.bobHash)
        #expect(try database.copyFromCluster(content, ifRevision: stale) == false)
        #expect(Set(try database.users().map(\.name)) == ["old", "edit"])
        #expect(try database.clusterBase() == nil)

        #expect(try database.copyFromCluster(content, ifRevision: try database.snapshot().revision))
        let snapshot = try database.snapshot()
        #expect(AdminContent(snapshot) == content)
        #expect(snapshot.rules.rules.map(\.topicFilter) == ["b/#", "a/#"], "rules keep the ordered order")
        #expect(try database.clusterBase() == content)
    }
}
