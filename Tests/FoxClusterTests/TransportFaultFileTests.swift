import Foundation
import Logging
import Synchronization
import Testing

@testable import FoxCluster

/// The fault file: its syntax, and the poller applying each change once.
@Suite("Cluster fault file")
struct TransportFaultFileTests {
    @Test func parsesBlockDirectives() throws {
        #expect(try FaultFile.parse("") == [])
        #expect(try FaultFile.parse("block 2\n") == [2])
        #expect(try FaultFile.parse("# partition\nblock 1 3\n\nblock 4  # and four\n") == [1, 3, 4])
        #expect(throws: FaultFile.ParseError(line: 2, text: "drop 2")) { try FaultFile.parse("block 1\ndrop 2") }
        #expect(throws: FaultFile.ParseError(line: 1, text: "block")) { try FaultFile.parse("block") }
        #expect(throws: FaultFile.ParseError(line: 1, text: "block x")) { try FaultFile.parse("block x") }
    }

    @Test func enabledOnlyByTheEnvironmentVariable() {
        #expect(FaultFile.isEnabled(environment: ["FOXMQ_TEST_FAULTS": "1"]))
        #expect(!FaultFile.isEnabled(environment: [:]))
        #expect(!FaultFile.isEnabled(environment: ["FOXMQ_TEST_FAULTS": "0"]))
    }

    /// Writing, rewriting and removing the file hands each new set to `apply`; a file that
    /// does not parse keeps the previous set.
    @Test func pollingAppliesEveryChange() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("foxmq-faults-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent(FaultFile.fileName).path
        let applied = Mutex<[Set<UInt16>]>([])
        let file = FaultFile(path: path, pollIntervalMillis: 10, logger: Logger(label: "test")) { blocked in
            applied.withLock { $0.append(blocked) }
        }
        file.start()
        defer { file.stop() }
        try await waitUntil("the missing file applies the empty set") { applied.withLock { $0 } == [[]] }
        try "block 2\n".write(toFile: path, atomically: true, encoding: .utf8)
        try await waitUntil("block 2 applies") { applied.withLock { $0 } == [[], [2]] }
        try "nonsense\n".write(toFile: path, atomically: true, encoding: .utf8)
        try "block 1 2\n".write(toFile: path, atomically: true, encoding: .utf8)
        try await waitUntil("block 1 2 applies") { applied.withLock { $0.last } == [1, 2] }
        try FileManager.default.removeItem(atPath: path)
        try await waitUntil("removing the file unblocks") { applied.withLock { $0.last } == [] }
        // The nonsense in between changed nothing, whether or not a poll saw it.
        #expect(applied.withLock { $0 } == [[], [2], [1, 2], []])
    }
}
