import Foundation
import FoxMQTT
import NIOCore
import Testing

@testable import FoxBrokerCore
@testable import FoxBrokerStore
@testable import FoxStore

/// Recovery refuses damage: a corrupt or missing log record, a damaged row or a newer format
/// stops start-up with the file, table and keys named, never an empty broker.
@Suite struct NodeStoreRecoveryTests {
    static func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("foxmq-store-\(UUID())").path
    }

    /// A store with `count` logged events (publishes of retained messages) and a checkpoint
    /// after `checkpointAt` of them.
    static func makeStore(_ directory: String, count: Int, checkpointAt: Int) throws -> [UInt8] {
        let store = try NodeStore(directory: directory, options: LMDBOptions())
        let broker = BrokerHarness()
        var chain = LogRecord.genesisChain
        var records: [(index: UInt64, value: ByteBuffer)] = []
        var events: [BrokerEvent] = [
            .sessionOpen(
                SessionOpen(
                    connection: cid(1), clientIdentifier: "p", protocolVersion: .v5, cleanStart: true,
                    sessionExpiryIntervalSeconds: 0, will: nil, receiveMaximum: 10, maximumPacketSize: nil))
        ]
        for n in 1..<count {
            events.append(
                .publish(
                    cid(1),
                    Publish(
                        topicName: "t/\(n % 7)", payload: ByteBuffer(string: "v\(n)"), qos: .atMostOnce, retain: true)))
        }
        for (offset, event) in events.enumerated() {
            let index = UInt64(offset + 1)
            broker.apply(event)
            let encoded = LogRecord.encode(
                index: index, timeMillis: broker.now, event: event.encoded, previousChain: chain)
            chain = encoded.chain
            records.append((index, encoded.value))
            if offset + 1 == checkpointAt {
                try store.write(records: records, checkpoint: broker.state.takeCheckpoint(appliedIndex: index))
                records = []
            }
        }
        try store.write(records: records, checkpoint: nil)
        return Array(broker.state.stateDigest(appliedIndex: UInt64(count)))
    }

    static func recover(_ directory: String) throws(NodeStoreError) -> RecoveredState {
        let store = try NodeStore(directory: directory, options: LMDBOptions())
        return try store.recover(defaultLimits: BrokerLimits()) { _ in }
    }

    /// Runs `body` with the store open, and closes it after (the node lock goes with it).
    static func withStore(_ directory: String, _ body: (NodeStore) throws -> Void) throws {
        let store = try NodeStore(directory: directory, options: LMDBOptions())
        try body(store)
    }

    /// Replaces the value of one log record, as a damaged disk would.
    static func overwriteLog(_ directory: String, index: UInt64, with change: (inout [UInt8]) -> Void) throws {
        let store = try NodeStore(directory: directory, options: LMDBOptions())
        try store.environment.write { transaction in
            var value = try transaction.get(store.log, key: LogRecord.key(index))!
            change(&value)
            try transaction.put(store.log, key: LogRecord.key(index), value: value)
        }
    }

    // Goal: rows at the checkpoint plus the replayed tail give the state that wrote them.
    @Test func recoversTheStateByRowsAndReplay() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let digest = try Self.makeStore(directory, count: 50, checkpointAt: 30)
        let recovered = try Self.recover(directory)
        #expect(recovered.checkpointIndex == 30)
        #expect(recovered.replayedCount == 20)
        #expect(recovered.lastIndex == 50)
        #expect(Array(recovered.state.stateDigest(appliedIndex: 50)) == digest)
    }

    // Goal: a flipped byte in a record after the checkpoint stops recovery, naming the table
    // and the record's index; the same in the checkpoint's own record (the chain's anchor).
    @Test(arguments: [UInt64(30), 41])
    func aCorruptRecordIsNamed(index: UInt64) throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try Self.makeStore(directory, count: 50, checkpointAt: 30)
        try Self.overwriteLog(directory, index: index) { $0[12] ^= 0x01 }
        do {
            _ = try Self.recover(directory)
            Issue.record("recovered a store with a damaged record")
        } catch {
            #expect(error.description.contains("table log"))
            #expect(error.description.contains("index \(index)"))
            #expect(error.description.contains("data.mdb"))
        }
    }

    // Goal: a whole record that is valid on its own but is not the one written there (the
    // chain breaks), and a missing record, are refused too.
    @Test func aSwappedOrMissingRecordIsNamed() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try Self.makeStore(directory, count: 50, checkpointAt: 30)
        try Self.withStore(directory) { store in
            try store.environment.write { transaction in
                let other = try transaction.get(store.log, key: LogRecord.key(44))!
                // Record 44's bytes re-keyed as 43: the CRC holds, the chain does not.
                let record = try LogRecord.decode(
                    key: LogRecord.key(44), value: ByteBuffer(bytes: other), previousChain: nil)
                let forged = LogRecord.encode(
                    index: 43, timeMillis: record.timeMillis, event: record.event,
                    previousChain: [UInt8](repeating: 7, count: 32))
                try transaction.put(store.log, key: LogRecord.key(43), value: Array(buffer: forged.value))
            }
        }
        do {
            _ = try Self.recover(directory)
            Issue.record("recovered a store with a forged record")
        } catch {
            #expect(error.description.contains("index 43"))
            #expect(error.description.contains("hash chain"))
        }
    }

    @Test func aMissingRecordIsNamed() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try Self.makeStore(directory, count: 50, checkpointAt: 30)
        try Self.withStore(directory) { store in
            try store.environment.write { transaction in _ = try transaction.delete(store.log, key: LogRecord.key(47)) }
        }
        do {
            _ = try Self.recover(directory)
            Issue.record("recovered a log with a gap")
        } catch {
            #expect(error.description.contains("indices 47...47"))
            #expect(error.description.contains("missing"))
        }
    }

    // Goal: a damaged session row is refused with its table and key.
    @Test func aDamagedRowIsNamed() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try Self.makeStore(directory, count: 10, checkpointAt: 10)
        try Self.withStore(directory) { store in
            try store.environment.write { transaction in
                var value = try transaction.get(store.retained, key: Array("t/3".utf8))!
                value[value.count / 2] ^= 0xFF
                try transaction.put(store.retained, key: Array("t/3".utf8), value: value)
            }
        }
        do {
            _ = try Self.recover(directory)
            Issue.record("recovered a damaged row")
        } catch {
            #expect(error.description.contains("table retained"))
            #expect(error.description.contains("\"t/3\""))
            #expect(error.description.contains("checksum mismatch"))
        }
    }

    // Goal: names longer than an LMDB key (511 bytes) are stored and recovered: a 600-byte
    // client identifier, retained topic and shared filter. Before, the checkpoint trapped on
    // the key size, on every restart again (review finding: any client could crash-loop it).
    @Test func longNamesAreStoredAndRecovered() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let longClient = String(repeating: "c", count: 600)
        let longTopic = "t/" + String(repeating: "x", count: 600)
        let longFilter = "$share/" + String(repeating: "g", count: 300) + "/" + String(repeating: "f", count: 300)
        let broker = BrokerHarness()
        broker.connect(longClient, conn: 1, cleanStart: false, expiry: 600)
        broker.subscribe(conn: 1, longFilter, qos: .atLeastOnce)
        broker.publish(conn: 1, longTopic, "v", qos: .atMostOnce, retain: true)
        broker.close(conn: 1)
        let digest = broker.state.stateDigest(appliedIndex: 4)
        try Self.withStore(directory) { store in
            try store.write(records: [], checkpoint: broker.state.takeCheckpoint(appliedIndex: 0))
        }
        let recovered = try Self.recover(directory)
        #expect(recovered.state.stateDigest(appliedIndex: 4) == digest)
        #expect(recovered.state.sessionCount == 1)
        #expect(recovered.state.retainedMessageCount == 1)
        #expect(recovered.state.subscriptionCount == 1)
    }

    // Goal: trimming by age drops records older than the cutoff, never one that recovery
    // needs (those after the checkpoint), and recovery from the trimmed log gives the same
    // state; the chain continues from the recorded base.
    @Test func trimmingByAgeKeepsWhatRecoveryNeeds() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = BrokerHarness(now: 1000)
        try Self.withStore(directory) { store in
            var chain = LogRecord.genesisChain
            var records: [(index: UInt64, value: ByteBuffer)] = []
            for index in UInt64(1)...50 {
                broker.now = index * 1000
                let event: BrokerEvent =
                    index == 1
                    ? .sessionOpen(
                        SessionOpen(
                            connection: cid(1), clientIdentifier: "p", protocolVersion: .v5, cleanStart: true,
                            sessionExpiryIntervalSeconds: 0, will: nil, receiveMaximum: 10, maximumPacketSize: nil))
                    : .publish(
                        cid(1),
                        Publish(topicName: "t/\(index % 5)", payload: ByteBuffer(string: "v\(index)"), retain: true))
                broker.apply(event)
                let encoded = LogRecord.encode(
                    index: index, timeMillis: broker.now, event: event.encoded, previousChain: chain)
                chain = encoded.chain
                records.append((index, encoded.value))
                if index == 40 {
                    try store.write(records: records, checkpoint: broker.state.takeCheckpoint(appliedIndex: 40))
                    records = []
                }
            }
            try store.write(records: records, checkpoint: nil)
            #expect(try store.trimLog(below: 41, olderThanMillis: 20_500, limit: 10_000) == 20)
            // A cutoff past everything still stops at the checkpoint.
            #expect(try store.trimLog(below: 41, olderThanMillis: .max, limit: 10_000) == 20)
        }
        let recovered = try Self.recover(directory)
        #expect(recovered.replayedCount == 10)
        #expect(recovered.state.stateDigest(appliedIndex: 50) == broker.state.stateDigest(appliedIndex: 50))
    }

    // Goal: a store written by a newer foxmq is refused with a message saying so.
    @Test func aNewerFormatIsRefused() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.withStore(directory) { store in
            try store.environment.write { transaction in
                try transaction.put(store.meta, key: NodeStore.MetaKey.format, value: NodeStore.bigEndian(UInt32(2)))
            }
        }
        do {
            _ = try NodeStore(directory: directory, options: LMDBOptions())
            Issue.record("opened a newer format")
        } catch {
            #expect(error.description.contains("newer foxmq"))
        }
    }
}
