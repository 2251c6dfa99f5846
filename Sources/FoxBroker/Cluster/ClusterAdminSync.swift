import FoxBrokerCore
import FoxStore
import Logging

/// Users and access rules in a cluster: an operator changes them on any node (`foxmq user`,
/// `foxmq acl` write that node's SQLite admin database), the node orders the change, and every
/// node applies it to its ordered copy (`BrokerState.admin`), checks clients against that copy,
/// and writes it back into its own database, so that `foxmq user list` shows the same on every
/// node.
///
/// Three contents are compared each round: the database now (`local`), the content this node
/// last copied in from the cluster (`base`, kept in the database beside it), and the ordered
/// one. What differs between base and local was changed here and is ordered; what the cluster
/// ordered is copied in once this node's own changes are ordered (never over an edit that is
/// not ordered yet: the copy is refused when the database moved since it was read).
public struct AdminReconciler: Sendable {
    public enum Decision: Equatable, Sendable {
        case nothing
        /// Order these changes, with this node's sequence numbers from `firstSequence` on.
        case submit([AdminChange], firstSequence: UInt64)
        /// Write this content into the database (and record it as the base).
        case copy(AdminContent)
    }

    /// A submission not yet seen ordered: the last sequence number it used, and when.
    private var pending: (lastSequence: UInt64, atMillis: UInt64)?
    /// A submission not ordered within this time is made again (it may have been lost with a
    /// refused or dropped entry; changes are idempotent).
    public var resubmitMillis: UInt64 = 30_000

    public init() {}

    /// A submission of this node is not seen ordered yet: `decide` must run again even when
    /// nothing else changed (its resubmission deadline).
    public var isWaiting: Bool { pending != nil }

    public mutating func decide(
        me: UInt32, local: AdminContent, base: AdminContent, ordered: OrderedAdmin, nowMillis: UInt64
    ) -> Decision {
        let orderedContent = Self.content(ordered)
        if let pending {
            if ordered.sequence(of: me) < pending.lastSequence {
                if nowMillis < pending.atMillis + resubmitMillis { return .nothing }
                self.pending = nil
            } else {
                // Ours are ordered: the ordered content is the truth, whatever came after them.
                self.pending = nil
                return orderedContent == local && orderedContent == base ? .nothing : .copy(orderedContent)
            }
        }
        let edits = Self.changes(from: base, to: local)
        if !edits.isEmpty && !Self.includes(orderedContent, edits) {
            let first = ordered.sequence(of: me) + 1
            pending = (first + UInt64(edits.count) - 1, nowMillis)
            return .submit(edits, firstSequence: first)
        }
        return orderedContent == local && orderedContent == base ? .nothing : .copy(orderedContent)
    }

    /// The changes that turn `base` into `local`: users by name (in byte order), the rule list
    /// whole.
    public static func changes(from base: AdminContent, to local: AdminContent) -> [AdminChange] {
        var changes: [AdminChange] = []
        let names = Set(base.users.keys).union(local.users.keys).sorted {
            $0.utf8.lexicographicallyPrecedes($1.utf8)
        }
        for name in names {
            switch (base.users[name], local.users[name]) {
            case (.some, nil): changes.append(.removeUser(name: name))
            case (let before, .some(let hash)) where before != hash:
                changes.append(.setUser(name: name, passwordHash: hash))
            default: break
            }
        }
        if local.rules != base.rules { changes.append(.setRules(local.rules.map(Self.rule))) }
        return changes
    }

    /// Whether applying `changes` to `content` changes nothing (they are in it already).
    static func includes(_ content: AdminContent, _ changes: [AdminChange]) -> Bool {
        var ordered = OrderedAdmin(users: content.users, rules: content.rules.map(Self.rule))
        for change in changes { ordered.apply(change) }
        return Self.content(ordered) == content
    }

    // MARK: Conversions

    public static func content(_ ordered: OrderedAdmin) -> AdminContent {
        AdminContent(users: ordered.users, rules: ordered.rules.map(Self.accessRule))
    }

    static func rule(_ rule: AccessRule) -> OrderedAdmin.Rule {
        let subject: OrderedAdmin.Rule.Subject =
            switch rule.subject {
            case .user(let name): .user(name)
            case .anonymous: .anonymous
            case .allUsers: .allUsers
            }
        return OrderedAdmin.Rule(
            subject: subject, publish: rule.action == .publish, topicFilter: rule.topicFilter,
            allow: rule.permission == .allow)
    }

    static func accessRule(_ rule: OrderedAdmin.Rule) -> AccessRule {
        let subject: AccessRule.Subject =
            switch rule.subject {
            case .user(let name): .user(name)
            case .anonymous: .anonymous
            case .allUsers: .allUsers
            }
        return AccessRule(
            id: 0, subject: subject, action: rule.publish ? .publish : .subscribe, topicFilter: rule.topicFilter,
            permission: rule.allow ? .allow : .deny)
    }
}

/// Runs the reconciler against the database and the orderer, once a `poll`; the directory the
/// connections check is the ordered copy.
public final class ClusterAdminSync: @unchecked Sendable {
    private let me: UInt32
    private let database: AdminDatabase
    private let directory: AdminDirectory
    private let orderer: ConsensusOrderer
    private let clock: any BrokerClock
    private let logger: Logger
    // Only `poll` touches these, from one task.
    private var reconciler = AdminReconciler()
    private var shownRevision: UInt64?
    private var lastSettings: [String: String]?
    /// The database as last read; read again only when its revision moved (one row a round).
    private var snapshot: AdminSnapshot?
    /// The base copy: it changes only when this node copies the cluster's content in.
    private var base: AdminContent?
    /// The database and ordered revisions of the last decision: unchanged, and with nothing
    /// waiting, there is nothing to decide.
    private var decidedAt: (database: Int64, ordered: UInt64)?

    public init(
        me: UInt32, database: AdminDatabase, directory: AdminDirectory, orderer: ConsensusOrderer,
        clock: any BrokerClock, logger: Logger
    ) {
        self.me = me
        self.database = database
        self.directory = directory
        self.orderer = orderer
        self.clock = clock
        self.logger = logger
    }

    /// One round: read, decide, act. Errors are logged and the next round tries again.
    /// Returns the database's settings when they changed since the previous round (the
    /// settings stay per node: each node orders its limits).
    public func poll() -> [String: String]? {
        do {
            if let changed = try database.snapshot(ifChangedSince: snapshot?.revision ?? -1) { snapshot = changed }
            guard let snapshot else { return nil }
            defer { lastSettings = snapshot.settings }
            let base = try self.base ?? database.clusterBase() ?? AdminContent()
            self.base = base
            let ordered = orderer.withState { $0.admin }
            show(ordered, settings: snapshot.settings)
            if let decidedAt, decidedAt == (snapshot.revision, ordered.revision), !reconciler.isWaiting {
                return lastSettings == snapshot.settings ? nil : snapshot.settings
            }
            decidedAt = (snapshot.revision, ordered.revision)
            let local = AdminContent(snapshot)
            switch reconciler.decide(me: me, local: local, base: base, ordered: ordered, nowMillis: clock.nowMillis()) {
            case .nothing:
                break
            case .submit(let changes, let firstSequence):
                for (offset, change) in changes.enumerated() {
                    let entry = AdminEntry(node: me, sequence: firstSequence + UInt64(offset), change: change)
                    let result = orderer.submit(.admin(entry))
                    if result != .accepted {
                        logger.warning("admin change not ordered yet (\(result)); retried shortly")
                    }
                }
                logger.notice(
                    "admin database changed on this node: ordering the change for every node",
                    metadata: ["changes": "\(changes.count)"])
            case .copy(let content):
                if try database.copyFromCluster(content, ifRevision: snapshot.revision) {
                    self.base = content
                    logger.info(
                        "users and access rules copied in from the cluster",
                        metadata: ["users": "\(content.users.count)", "rules": "\(content.rules.count)"])
                }
            }
            return lastSettings == snapshot.settings ? nil : snapshot.settings
        } catch {
            logger.warning("admin database sync failed; retried shortly", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Puts the ordered users and rules in front of the connections when they changed.
    private func show(_ ordered: OrderedAdmin, settings: [String: String]) {
        guard shownRevision != ordered.revision || directory.current.settings != settings else { return }
        shownRevision = ordered.revision
        let rules = ordered.rules.enumerated().map { position, rule in
            var accessRule = AdminReconciler.accessRule(rule)
            accessRule.id = Int64(position + 1)
            return accessRule
        }
        directory.replace(
            AdminSnapshot(
                revision: Int64(ordered.revision), users: ordered.users, rules: AccessRules(rules), settings: settings))
    }
}
