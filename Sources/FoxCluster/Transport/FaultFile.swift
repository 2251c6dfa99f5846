import Foundation
import Logging
import Synchronization

/// Fault injection for multi-process tests: a file that says which peers this node cuts itself
/// off from, polled every `pollIntervalMillis` (200 ms) and applied with `setBlocked`.
///
/// The node enables it only when the environment has `FOXMQ_TEST_FAULTS=1` (`isEnabled`), on
/// `DIR/cluster-faults` of its data directory. The file holds one directive per line:
///
///     block 2        # drop all traffic to and from node 2
///     block 1 3      # several indices on one line
///
/// Blank lines and `#` comments are ignored; an empty or missing file blocks nothing. A file
/// that does not parse is logged and ignored (the previous set stays). For a symmetric
/// partition, block on both sides: each node's file names the nodes on the other side.
public final class FaultFile: Sendable {
    public static let environmentVariable = "FOXMQ_TEST_FAULTS"
    public static let fileName = "cluster-faults"

    public let path: String
    public let pollIntervalMillis: Int64
    private let apply: @Sendable (Set<UInt16>) -> Void
    private let logger: Logger
    private let task = Mutex<Task<Void, Never>?>(nil)

    /// Whether the environment enables fault injection.
    public static func isEnabled(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        environment[environmentVariable] == "1"
    }

    /// Polls `path` and hands every change of the blocked set to `apply`.
    public init(
        path: String, pollIntervalMillis: Int64 = 200, logger: Logger,
        apply: @escaping @Sendable (Set<UInt16>) -> Void
    ) {
        precondition(pollIntervalMillis > 0)
        self.path = path
        self.pollIntervalMillis = pollIntervalMillis
        self.logger = logger
        self.apply = apply
    }

    /// Polls `path` and blocks on `transport` what it names.
    public convenience init(path: String, transport: ClusterTransport, logger: Logger) {
        self.init(path: path, logger: logger) { transport.setBlocked($0) }
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var line: Int
        public var text: String
        public var description: String { "line \(line): cannot read \"\(text)\" (expected: block INDEX...)" }
    }

    /// The blocked set a file's text describes.
    public static func parse(_ text: String) throws(ParseError) -> Set<UInt16> {
        var blocked: Set<UInt16> = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: \.isWhitespace)
            guard let directive = words.first else { continue }
            guard directive == "block", words.count > 1 else {
                throw ParseError(line: number + 1, text: String(rawLine))
            }
            for word in words.dropFirst() {
                guard let index = UInt16(word) else { throw ParseError(line: number + 1, text: String(rawLine)) }
                blocked.insert(index)
            }
        }
        return blocked
    }

    /// Starts polling (a task that reads a few bytes every interval: a test facility, not
    /// worth an event loop's time).
    public func start() {
        task.withLock { task in
            precondition(task == nil, "FaultFile.start() called twice")
            task = Task { [self] in
                var current: Set<UInt16>? = nil
                var lastError: ParseError? = nil
                while !Task.isCancelled {
                    switch read() {
                    case .success(let blocked):
                        lastError = nil
                        guard blocked != current else { break }
                        if current != nil || !blocked.isEmpty {
                            logger.notice("\(path): blocking \(blocked.sorted())")
                        }
                        current = blocked
                        apply(blocked)
                    case .failure(let error):
                        if error != lastError {
                            logger.warning("\(path): \(error); keeping the blocked set")
                        }
                        lastError = error
                    }
                    try? await Task.sleep(for: .milliseconds(pollIntervalMillis))
                }
            }
        }
    }

    public func stop() {
        task.withLock { task in
            task?.cancel()
            task = nil
        }
    }

    /// The file's blocked set; a missing file blocks nothing.
    private func read() -> Result<Set<UInt16>, ParseError> {
        guard let data = FileManager.default.contents(atPath: path) else { return .success([]) }
        return Result { () throws(ParseError) in try Self.parse(String(decoding: data, as: UTF8.self)) }
    }
}
