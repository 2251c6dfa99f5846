import FoxStore
import Logging
import NIOConcurrencyHelpers

/// The users and access rules a running node checks against: a snapshot of the SQLite admin
/// database, swapped whole when the database changes (polled every second, so a
/// `foxmq user`/`foxmq acl` command reaches a running node within a second, without a
/// restart). Apply never reads it: verdicts are made at the edge and travel in the events.
public final class AdminDirectory: Authenticator, Sendable {
    private let snapshot: NIOLockedValueBox<AdminSnapshot>

    public init(_ snapshot: AdminSnapshot) {
        self.snapshot = NIOLockedValueBox(snapshot)
    }

    public var current: AdminSnapshot { snapshot.withLockedValue { $0 } }

    /// Reads the database if it changed since the snapshot held; returns the new snapshot.
    @discardableResult
    public func reload(from database: AdminDatabase) throws -> AdminSnapshot? {
        let revision = current.revision
        guard let changed = try database.snapshot(ifChangedSince: revision) else { return nil }
        snapshot.withLockedValue { $0 = changed }
        return changed
    }

    /// Swaps in a snapshot made elsewhere (a cluster's ordered users and rules).
    public func replace(_ newSnapshot: AdminSnapshot) {
        snapshot.withLockedValue { $0 = newSnapshot }
    }

    public func authenticate(username: String?, password: [UInt8]?, allowAnonymous: Bool) -> Bool {
        UserDirectoryAuthenticator(directory: current.userDirectory).authenticate(
            username: username, password: password, allowAnonymous: allowAnonymous)
    }

    /// Whether the access rules allow this request (everything, when there are no rules).
    func authorize(_ request: ConnectionStateMachine.AccessRequest, username: String?, clientIdentifier: String) -> Bool
    {
        let rules = snapshot.withLockedValue { $0.rules }
        if rules.isEmpty { return true }
        switch request {
        case .publish(let topicName):
            return rules.mayPublish(topic: topicName, username: username, clientIdentifier: clientIdentifier)
        case .subscribe(let filter):
            return rules.maySubscribe(filter: filter, username: username, clientIdentifier: clientIdentifier)
        }
    }
}
