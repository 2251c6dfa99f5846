/// Which topics publishers publish to and which filters subscribers subscribe to, and from that
/// which (subscriber, publisher) pairs should see which messages.
public enum TopicMode: String, Sendable, CaseIterable, Codable {
    /// Every publisher publishes to `<prefix>/all`; every subscriber subscribes to it.
    case single
    /// Publisher p publishes to `<prefix>/<p>`; subscriber s subscribes to `<prefix>/<s mod N>`.
    case perPublisher = "per-publisher"
    /// Publisher p publishes message n to `<prefix>/<p>/<n mod K>`; subscribers use wildcards
    /// (see `TreeFilter`).
    case tree
}

/// Subscriber filters in the tree mode.
public enum TreeFilter: String, Sendable, CaseIterable, Codable {
    /// `<prefix>/#`: every message of every publisher.
    case all
    /// `<prefix>/<s mod N>/+`: every message of one publisher.
    case publisher
    /// `<prefix>/+/<s mod K>`: one leaf of every publisher (every K-th message).
    case leaf
}

public struct TopicPlan: Sendable, Hashable {
    public var prefix: String
    public var mode: TopicMode
    public var publishers: Int
    /// K, the number of leaves per publisher in the tree mode.
    public var treeWidth: Int
    public var treeFilter: TreeFilter

    public init(
        prefix: String, mode: TopicMode, publishers: Int, treeWidth: Int = 10, treeFilter: TreeFilter = .publisher
    ) {
        precondition(publishers >= 1 && treeWidth >= 1)
        self.prefix = prefix
        self.mode = mode
        self.publishers = publishers
        self.treeWidth = treeWidth
        self.treeFilter = treeFilter
    }

    /// The topics of publisher `p`: message n goes to `topics[n % topics.count]`.
    public func publisherTopics(_ p: Int) -> [String] {
        switch mode {
        case .single: ["\(prefix)/all"]
        case .perPublisher: ["\(prefix)/\(p)"]
        case .tree: (0..<treeWidth).map { "\(prefix)/\(p)/\($0)" }
        }
    }

    public func subscriberFilter(_ s: Int) -> String {
        switch mode {
        case .single: "\(prefix)/all"
        case .perPublisher: "\(prefix)/\(s % publishers)"
        case .tree:
            switch treeFilter {
            case .all: "\(prefix)/#"
            case .publisher: "\(prefix)/\(s % publishers)/+"
            case .leaf: "\(prefix)/+/\(s % treeWidth)"
            }
        }
    }

    /// Whether subscriber `s` receives anything from publisher `p`.
    public func receives(subscriber s: Int, publisher p: Int) -> Bool {
        switch mode {
        case .single: true
        case .perPublisher: p == s % publishers
        case .tree: treeFilter == .publisher ? p == s % publishers : true
        }
    }

    /// Maps a publisher's sequence number to the position in the stream subscriber `s` sees,
    /// so that its stream is again 0, 1, 2, ... (only the leaf filter skips messages).
    @inline(__always)
    public func streamIndex(subscriber s: Int, sequence: UInt64) -> UInt64 {
        mode == .tree && treeFilter == .leaf ? sequence / UInt64(treeWidth) : sequence
    }

    /// How many of the first `sent` messages of publisher `p` subscriber `s` should receive.
    public func expectedCount(subscriber s: Int, publisher p: Int, sent: UInt64) -> UInt64 {
        guard receives(subscriber: s, publisher: p) else { return 0 }
        if mode == .tree && treeFilter == .leaf {
            let k = UInt64(s % treeWidth)
            let width = UInt64(treeWidth)
            return sent > k ? (sent - k + width - 1) / width : 0
        }
        return sent
    }
}
