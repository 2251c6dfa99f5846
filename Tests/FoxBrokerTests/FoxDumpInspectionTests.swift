import Foundation
import FoxMQTT
import FoxStore
import NIOCore
import Testing

@testable import FoxBrokerCore
@testable import FoxBrokerStore

/// The read API behind foxdump (`NodeStore+Inspection`, `RowInspection`): readers of the log and
/// rows, and `verify`, on stores written the way the node writes them and then damaged on purpose.
@Suite struct FoxDumpInspectionTests {
    /// A store in a temporary directory, written record by record from events applied to a
    /// `BrokerHarness`, with checkpoints where the script asks for them.
    final class Fixture {
        let directory: String
        let harness = BrokerHarness()
        var store: NodeStore?
        var index: UInt64 = 0
        var chain = LogRecord.genesisChain

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("foxdump-\(UUID())").path
            store = try NodeStore(directory: directory, options: LMDBOptions(sync: false))
        }

        deinit {
            store?.environment.close()
            try? FileManager.default.removeItem(atPath: directory)
        }

        func append(_ event: BrokerEvent, checkpoint: Bool = false) throws {
            index += 1
            harness.advance(millis: 10)
            harness.apply(event)
            let (value, next) = LogRecord.encode(
                index: index, timeMillis: harness.now, event: event.encoded, previousChain: chain)
            chain = next
            let rows = checkpoint ? harness.state.takeCheckpoint(appliedIndex: index) : nil
            try #require(store).write(records: [(index, value)], checkpoint: rows)
        }

        /// Changes the environment directly (the damage a disk or a bug could do).
        func damage(_ body: (NodeStore, inout LMDBWriteTransaction) throws -> Void) throws {
            let writer = try #require(store)
            try writer.environment.write { transaction in try body(writer, &transaction) }
        }

        /// Closes the writer and opens the store read-only, as foxdump does.
        func reopenReadOnly() throws -> NodeStore {
            store?.environment.close()
            store = nil
            return try NodeStore(directory: directory, options: LMDBOptions(readOnly: true))
        }

        /// Sessions, subscriptions, retained and queued messages, a QoS 2 exchange in flight;
        /// a checkpoint at index 8, records after it.
        func writeScenario() throws {
            try append(
                .sessionOpen(
                    SessionOpen(
                        connection: cid(1), clientIdentifier: "sub", protocolVersion: .v5, cleanStart: true,
                        sessionExpiryIntervalSeconds: 3600, will: nil, receiveMaximum: 10, maximumPacketSize: nil)))
            try append(
                .subscribe(
                    cid(1),
                    Subscribe(
                        packetIdentifier: 1,
                        subscriptions: [
                            TopicSubscription(
                                topicFilter: "a/#",
                                options: SubscriptionOptions(
                                    qos: .exactlyOnce, noLocal: false, retainAsPublished: false,
                                    retainHandling: .sendOnSubscribe))
                        ], properties: Properties())))
            try append(
                .sessionOpen(
                    SessionOpen(
                        connection: cid(2), clientIdentifier: "pub", protocolVersion: .v5, cleanStart: true,
                        sessionExpiryIntervalSeconds: 0, will: nil, receiveMaximum: 10, maximumPacketSize: nil)))
            try append(publish("a/retained", "kept", qos: .atLeastOnce, retain: true, id: 1))
            try append(publish("a/x", "one", qos: .exactlyOnce, id: 2))
            try append(.pubRec(cid(1), packetIdentifier: 2, reasonCode: .success))
            try append(publish("a/y", "two", qos: .atLeastOnce, id: 3))
            try append(.sessionClose(cid(1), SessionClose(cause: .abnormal)), checkpoint: true)
            try append(publish("a/z", "three", qos: .atLeastOnce, id: 4))
            try append(publish("b/retained", Array(repeating: "x", count: 400).joined(), retain: true))
            try append(.tick)
        }

        func publish(
            _ topic: String, _ payload: String, qos: QoS = .atMostOnce, retain: Bool = false, id: UInt16? = nil
        ) -> BrokerEvent {
            .publish(
                cid(2),
                Publish(
                    topicName: topic, payload: ByteBuffer(string: payload), qos: qos, retain: retain, dup: false,
                    packetIdentifier: qos == .atMostOnce ? nil : id, properties: Properties()))
        }
    }

    // Goal: a store written as the node writes it verifies clean, and its rows replayed from
    // index 1 give the checkpoint's state digest.
    @Test func cleanStoreVerifiesOK() throws {
        let fixture = try Fixture()
        try fixture.writeScenario()
        let store = try fixture.reopenReadOnly()
        let report = store.verify()
        #expect(report.isOK, "\(report.problems)")
        #expect(report.logRecordCount == 11)
        #expect(report.firstLogIndex == 1 && report.lastLogIndex == 11)
        #expect(report.checkpointIndex == 8)
        #expect(report.sessionRowCount == 2)
        #expect(report.retainedRowCount == 1)
        #expect(report.replayedCount == 3)
        #expect(report.recoveredIndex == 11)
        guard case .matchesLog(let digest) = report.rowsCheck else {
            Issue.record("rows not compared: \(report.rowsCheck)")
            return
        }
        #expect(digest.count == 64)
        #expect(report.recoveredDigest == fixture.harness.state.stateDigestHex(appliedIndex: 11))
    }

    // Goal: the readers return what was written: summary, log entries decoded, session rows with
    // their subscriptions and in-flight state, retained rows, the current state with the log
    // after the checkpoint replayed.
    @Test func readersReturnTheStoredValues() throws {
        let fixture = try Fixture()
        try fixture.writeScenario()
        let store = try fixture.reopenReadOnly()

        let summary = try store.summary()
        #expect(summary.formatVersion == NodeStore.formatVersion)
        #expect(summary.checkpoint?.appliedIndex == 8)
        #expect(summary.firstLogIndex == 1 && summary.lastLogIndex == 11)
        #expect(summary.logBase == nil)
        #expect(summary.tables.first { $0.table == "log" }?.entries == 11)

        let entries = try store.logEntries(from: 4, limit: 3)
        #expect(entries.map(\.index) == [4, 5, 6])
        let records = try store.logRecords(from: 4, limit: 2)
        guard case .publish(_, let publish) = try records[0].decodeEvent() else {
            Issue.record("index 4 is not the publish")
            return
        }
        #expect(publish.topicName == "a/retained")

        let sessions = try store.sessionRows(limit: 10).map { try SessionSummary.decode(key: $0.key, value: $0.value) }
        #expect(sessions.map(\.clientIdentifier) == ["pub", "sub"])
        let subscriber = try #require(sessions.last)
        #expect(!subscriber.isConnected)
        #expect(subscriber.subscriptions.map(\.filter) == ["a/#"])
        #expect(subscriber.subscriptions.first?.options.qos == .exactlyOnce)
        // The QoS 2 delivery got PUBREC (awaiting PUBCOMP); the QoS 1 one awaits its PUBACK.
        #expect(
            subscriber.inflight.map(\.state) == [.awaitingAcknowledgement, .awaitingComplete, .awaitingAcknowledgement])
        #expect(subscriber.inflight.compactMap { $0.message?.topicName } == ["a/retained", "a/y"])

        let retained = try store.retainedRows(limit: 10).map { try RetainedRow.decode(key: $0.key, value: $0.value) }
        #expect(retained.map(\.topicName) == ["a/retained"])
        #expect(try store.row(.sessions, key: Array("nobody".utf8)) == nil)
        #expect(try store.row(.sessions, key: []) == nil)

        let current = try store.currentRows()
        #expect(current.index == 11 && current.checkpointIndex == 8)
        let currentRetained = try (current.rows[.retained] ?? []).map {
            try RetainedRow.decode(key: $0.key, value: $0.value).topicName
        }
        #expect(currentRetained == ["a/retained", "b/retained"])
        let currentSubscriber = try (current.rows[.sessions] ?? []).map {
            try SessionSummary.decode(key: $0.key, value: $0.value)
        }.first { $0.clientIdentifier == "sub" }
        #expect(currentSubscriber?.queued.count == 1)

        var paged: [String] = []
        try store.forEachRow(.sessions, pageSize: 1) { paged.append(String(decoding: $0.key, as: UTF8.self)) }
        #expect(paged == ["pub", "sub"])
        #expect(topicFilter("$share/g/a/+", matches: "a/b"))
        #expect(!topicFilter("+/b", matches: "$SYS/b"))
    }

    // Goal: one flipped byte in a log value is reported with its index (CRC), and recovery is
    // reported as failing when the record lies after the checkpoint.
    @Test func flippedByteInLogValueIsReportedWithItsIndex() throws {
        let fixture = try Fixture()
        try fixture.writeScenario()
        try fixture.damage { store, transaction in
            var value = try #require(try transaction.get(store.log, key: LogRecord.key(10)))
            value[value.count / 2] ^= 0x40
            try transaction.put(store.log, key: LogRecord.key(10), value: value)
        }
        let report = try fixture.reopenReadOnly().verify()
        #expect(!report.isOK)
        let problem = try #require(report.problems.first)
        #expect(report.problems.count == 1, "\(report.problems)")
        #expect(problem.table == "log" && problem.keys == "index 10")
        #expect(problem.detail.contains("checksum mismatch"))
        #expect(report.recoveredDigest == nil)
        // The chain resumes after the damaged record: index 11 is not reported.
        #expect(report.logRecordCount == 10)
    }

    // Goal: a record deleted from the middle of the log is reported as a missing range, and
    // the rows can no longer be compared with a replay from index 1.
    @Test func recordRemovedFromTheMiddleIsAMissingRange() throws {
        let fixture = try Fixture()
        try fixture.writeScenario()
        try fixture.damage { store, transaction in
            _ = try transaction.delete(store.log, key: LogRecord.key(5))
        }
        let report = try fixture.reopenReadOnly().verify()
        #expect(report.problems.map(\.keys) == ["indices 5...5"], "\(report.problems)")
        #expect(report.problems.first?.detail.contains("missing") == true)
        guard case .skipped = report.rowsCheck else {
            Issue.record("rows compared despite the gap")
            return
        }
        // Records after the checkpoint are intact: recovery still works.
        #expect(report.recoveredIndex == 11)
    }

    // Goal: a session row that does not decode is reported with its table and key.
    @Test func damagedSessionRowIsReportedWithItsKey() throws {
        let fixture = try Fixture()
        try fixture.writeScenario()
        try fixture.damage { store, transaction in
            var value = try #require(try transaction.get(store.sessions, key: Array("sub".utf8)))
            value[3] ^= 0x01
            try transaction.put(store.sessions, key: Array("sub".utf8), value: value)
        }
        let report = try fixture.reopenReadOnly().verify()
        #expect(report.problems.contains { $0.table == "sessions" && $0.keys == "key \"sub\"" }, "\(report.problems)")
        #expect(report.recoveredDigest == nil)
    }

    // Goal: a trimmed log (meta logBase) still verifies; the comparison from index 1 is skipped
    // and says why.
    @Test func trimmedLogVerifiesFromItsBase() throws {
        let fixture = try Fixture()
        try fixture.writeScenario()
        #expect(try #require(fixture.store).trimLog(below: 6, limit: 100) == 5)
        let report = try fixture.reopenReadOnly().verify()
        #expect(report.isOK, "\(report.problems)")
        #expect(report.logBase?.firstIndex == 6)
        #expect(report.firstLogIndex == 6)
        guard case .skipped(let reason) = report.rowsCheck else {
            Issue.record("compared rows with a trimmed log")
            return
        }
        #expect(reason.contains("trimmed"))
        #expect(report.recoveredIndex == 11)
    }

    // Goal: a store written by a newer format is refused at open, naming the file.
    @Test func newerFormatMarkerIsRefused() throws {
        let fixture = try Fixture()
        try fixture.writeScenario()
        try fixture.damage { store, transaction in
            try transaction.put(store.meta, key: NodeStore.MetaKey.format, value: NodeStore.bigEndian(UInt32(2)))
        }
        do {
            _ = try fixture.reopenReadOnly()
            Issue.record("a newer format was opened")
        } catch {
            guard let error = error as? NodeStoreError, case .formatTooNew(let file, let found, _) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(found == 2)
            #expect(file.hasSuffix("data.mdb"))
        }
    }

    // Goal: a directory without a store is refused read-only (nothing created), naming the path.
    @Test func missingStoreIsRefusedWithItsPath() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("foxdump-none-\(UUID())").path
        do {
            _ = try NodeStore(directory: directory, options: LMDBOptions(readOnly: true))
            Issue.record("opened a store that does not exist")
        } catch {
            #expect("\(error)".contains(directory))
        }
        #expect(!FileManager.default.fileExists(atPath: directory))
    }
}
