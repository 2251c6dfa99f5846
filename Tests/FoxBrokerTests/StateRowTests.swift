import Crypto
import Foundation
import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// The canonical codec of events and rows, and the promise it makes: a state restored from its
/// rows is the same state (equal digest) and behaves the same (equal actions) as the live one.
@Suite struct StateRowTests {
    static func randomLimits() -> BrokerLimits {
        var limits = BrokerLimits()
        limits.queuedMessageCountMax = 4
        limits.subscriptionCountMax = 5
        limits.sessionCountMax = 4
        return limits
    }

    /// The rows of `state` loaded into a new state, as a restart does.
    static func twin(of state: BrokerState, appliedIndex: UInt64) throws -> BrokerState {
        let rows = state.allRows()
        func pairs(_ rows: [StateRow]) -> [(key: [UInt8], value: ByteBuffer)] {
            rows.map { ($0.key, $0.value!) }
        }
        return try BrokerState.load(
            meta: state.meta(appliedIndex: appliedIndex), sessions: pairs(rows.sessions),
            retained: pairs(rows.retained), cursors: pairs(rows.cursors))
    }

    // Goal: a state restored from its rows has the digest of the live state, and from there
    // the two emit identical actions for the same events and end with equal digests (R1c:
    // the twin is built by a different insertion history, so hash order that leaked into
    // behaviour would show here, unlike two states fed the same history).
    @Test(arguments: 0..<120)
    func restoredTwinBehavesTheSame(seed: UInt64) throws {
        var generator = EventGenerator(seed: seed &* 104_729 &+ 17)
        let live = BrokerState(limits: Self.randomLimits())
        let split = 40 + Int(seed % 60)
        for _ in 0..<split {
            var actions: [BrokerAction] = []
            live.apply(generator.next(), atMillis: generator.now, into: &actions)
            generator.observe(actions)
        }
        let twin = try Self.twin(of: live, appliedIndex: UInt64(split))
        #expect(twin.stateDigest(appliedIndex: 1) == live.stateDigest(appliedIndex: 1), "seed \(seed) at \(split)")
        for step in 0..<120 {
            let event = generator.next()
            var liveActions: [BrokerAction] = []
            var twinActions: [BrokerAction] = []
            live.apply(event, atMillis: generator.now, into: &liveActions)
            twin.apply(event, atMillis: generator.now, into: &twinActions)
            #expect(
                liveActions.descriptions == twinActions.descriptions, "seed \(seed) step \(step) event \(event)")
            if liveActions.descriptions != twinActions.descriptions { return }
            generator.observe(liveActions)
        }
        #expect(twin.stateDigest(appliedIndex: 2) == live.stateDigest(appliedIndex: 2), "seed \(seed) at the end")
    }

    // Goal: checkpoints write only the changed rows, and those are enough: rows kept by
    // applying every checkpoint (taken at random points) load into the live state's twin.
    // A change that bypassed the dirty tracking would leave a stale row and a digest mismatch.
    @Test(arguments: 0..<60)
    func incrementalCheckpointsAddUpToTheState(seed: UInt64) throws {
        var generator = EventGenerator(seed: seed &* 15_485_863 &+ 3)
        let live = BrokerState(limits: Self.randomLimits())
        var sessions: [[UInt8]: ByteBuffer] = [:]
        var retained: [[UInt8]: ByteBuffer] = [:]
        var cursors: [[UInt8]: ByteBuffer] = [:]
        var meta = live.meta(appliedIndex: 0)
        func absorb(_ checkpoint: StateCheckpoint) throws {
            for row in checkpoint.sessions { sessions[row.key] = row.value }
            for row in checkpoint.retained { retained[row.key] = row.value }
            cursors = Dictionary(uniqueKeysWithValues: checkpoint.cursors.map { ($0.key, $0.value!) })
            meta = try StateMeta.decode(checkpoint.meta)
        }
        var index: UInt64 = 0
        for _ in 0..<200 {
            var actions: [BrokerAction] = []
            live.apply(generator.next(), atMillis: generator.now, into: &actions)
            generator.observe(actions)
            index += 1
            if generator.random.chance(15) { try absorb(live.takeCheckpoint(appliedIndex: index)) }
        }
        try absorb(live.takeCheckpoint(appliedIndex: index))
        #expect(meta.appliedIndex == index)
        let restored = try BrokerState.load(
            meta: meta, sessions: sessions.map { ($0.key, $0.value) }, retained: retained.map { ($0.key, $0.value) },
            cursors: cursors.map { ($0.key, $0.value) })
        #expect(restored.stateDigest(appliedIndex: index) == live.stateDigest(appliedIndex: index), "seed \(seed)")
        let liveRows = live.allRows()
        let restoredRows = restored.allRows()
        for (name, a, b) in [
            ("sessions", liveRows.sessions, restoredRows.sessions),
            ("retained", liveRows.retained, restoredRows.retained),
            ("cursors", liveRows.cursors, restoredRows.cursors),
        ] {
            let left = Dictionary(uniqueKeysWithValues: a.map { (String(decoding: $0.key, as: UTF8.self), $0.value) })
            let right = Dictionary(uniqueKeysWithValues: b.map { (String(decoding: $0.key, as: UTF8.self), $0.value) })
            for key in Set(left.keys).union(right.keys).sorted() where left[key] != right[key] {
                Issue.record(
                    "seed \(seed): \(name) row \(key.debugDescription) differs (live has it: \(left[key] != nil))")
            }
        }
        #expect(restored.sessionCount == live.sessionCount)
        #expect(restored.subscriptionCount == live.subscriptionCount)
    }

    // Goal: every event the generator makes, and the node events, decode to themselves.
    @Test(arguments: 0..<40)
    func eventsRoundTrip(seed: UInt64) throws {
        var generator = EventGenerator(seed: seed &+ 99)
        let state = BrokerState(limits: Self.randomLimits())
        var events: [BrokerEvent] = [
            .tick, .nodeStarted(node: 3, incarnation: 77), .configure(Self.randomLimits()),
            .sessionOpen(
                SessionOpen(
                    connection: ConnectionID(node: 1, incarnation: 2, local: 3), clientIdentifier: "ü",
                    protocolVersion: .v5, cleanStart: false, sessionExpiryIntervalSeconds: 60,
                    will: will("w/t", "bye", qos: .exactlyOnce, retain: true, delay: 5), receiveMaximum: 9,
                    maximumPacketSize: 1000)),
        ]
        for _ in 0..<150 {
            let event = generator.next()
            events.append(event)
            var actions: [BrokerAction] = []
            state.apply(event, atMillis: generator.now, into: &actions)
            generator.observe(actions)
        }
        for event in events {
            #expect(try BrokerEvent.decode(event.encoded) == event, "\(event)")
        }
    }

    // MARK: Golden fixtures of format version 1

    static let fixtureDirectory = String(#filePath.dropLast("StateRowTests.swift".count)) + "Fixtures/"

    /// Reads a hex fixture. `FOXMQ_WRITE_FIXTURES=1 swift test --filter StateRowTests` writes
    /// `current` instead: only when the format version changes on purpose.
    static func fixture(_ name: String, current: ByteBuffer? = nil) throws -> ByteBuffer {
        if let current, ProcessInfo.processInfo.environment["FOXMQ_WRITE_FIXTURES"] == "1" {
            let hex = Array(buffer: current).map { String(format: "%02x", $0) }
            let lines = stride(from: 0, to: hex.count, by: 32).map { hex[$0..<min($0 + 32, hex.count)].joined() }
            try (lines.joined(separator: "\n") + "\n").write(
                toFile: fixtureDirectory + name, atomically: true, encoding: .utf8)
        }
        let text = try String(contentsOfFile: fixtureDirectory + name, encoding: .utf8)
        var bytes: [UInt8] = []
        var high: UInt8?
        for character in text.utf8 {
            let nibble: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = character - UInt8(ascii: "a") + 10
            default: continue
            }
            if let first = high {
                bytes.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return ByteBuffer(bytes: bytes)
    }

    /// The fixture event: a retained QoS 2 PUBLISH with properties.
    static var fixtureEvent: BrokerEvent {
        var properties = Properties()
        properties.contentType = "text/plain"
        properties.messageExpiryIntervalSeconds = 30
        properties.userProperties = [UserProperty("k", "v")]
        return .publish(
            ConnectionID(node: 0, incarnation: 4, local: 9),
            Publish(
                topicName: "sensors/1", payload: ByteBuffer(string: "21.5"), qos: .exactlyOnce, retain: true,
                dup: false,
                packetIdentifier: 7, properties: properties))
    }

    static var fixtureSessionState: BrokerState {
        let broker = BrokerHarness(limits: BrokerLimits())
        broker.connect("sub", conn: 1, cleanStart: false, expiry: 3600, receiveMaximum: 1)
        broker.subscribe(conn: 1, "sensors/#", qos: .exactlyOnce)
        broker.connect("pub", conn: 2)
        broker.publish(conn: 2, "sensors/1", "a", qos: .exactlyOnce, retain: true, packetIdentifier: 1)
        broker.publish(conn: 2, "sensors/2", "b", qos: .atLeastOnce, packetIdentifier: 2)
        broker.close(conn: 1)
        return broker.state
    }

    // Goal: the bytes of format version 1 do not change by accident: a record, an event and a
    // session row written today must decode in every later version.
    @Test func goldenFixturesOfFormatVersion1() throws {
        let record = LogRecord.encode(
            index: 42, timeMillis: 1_765_000_000_000, event: Self.fixtureEvent.encoded,
            previousChain: LogRecord.genesisChain)
        #expect(
            Array(buffer: record.value) == Array(buffer: try Self.fixture("log-record-v1.hex", current: record.value)))
        let decoded = try LogRecord.decode(
            key: LogRecord.key(42), value: try Self.fixture("log-record-v1.hex"), previousChain: LogRecord.genesisChain)
        #expect(decoded.timeMillis == 1_765_000_000_000)
        #expect(try decoded.decodeEvent() == Self.fixtureEvent)

        let state = Self.fixtureSessionState
        let row = state.sessionRow(ExactString("sub"))!
        #expect(Array(buffer: row) == Array(buffer: try Self.fixture("session-row-v1.hex", current: row)))
        let session = try Session.decodeRow(try Self.fixture("session-row-v1.hex"), key: Array("sub".utf8))
        #expect(session.outbound.queue.count == 1)
        #expect(session.outbound.inflight.count == 1)
        #expect(session.subscriptions.count == 1)
    }

    // Goal: times are checked for form, not sense: a session row disconnected at the end of
    // time (2^64 - 252 ms) with a 60 s expiry interval decodes, loads and lives through ticks,
    // its deadline saturated to "never", instead of trapping on the overflow; and a message
    // whose deadline is "never" is sent with the largest expiry interval. (The row is the
    // `scripts/fuzz records` crash input without its two selector bytes, with its CRC-32C.)
    @Test func timesAtTheEndOfTimeSaturate() throws {
        let hex =
            "0100000002633200040000003c000001ffffffffffffff04000000000000000200010000000003612f78000000087265"
            + "7461696e656401010000001211020000025809000201022600016b0001760100000000000932840100000002633201"
            + "000000000000020000000003612f7800000001310200000000010000010000000263320200000000020000000003612f"
            + "7900000000000000000003000000020000000200000000000000000000000000"
        let body = stride(from: 0, to: hex.count, by: 2).map { offset in
            UInt8(hex.dropFirst(offset).prefix(2), radix: 16)!
        }
        var row = ByteBuffer(bytes: body)
        row.writeInteger(CRC32C.checksum(body))
        let session = try Session.decodeRow(row)
        #expect(session.disconnectedAtMillis == UInt64.max - 251)
        #expect(session.expiryDeadlineMillis == UInt64.max)
        let summary = try SessionSummary.decode(key: RowKey.key(session.clientIdentifier.utf8), value: row)
        #expect(summary.expiryDeadlineMillis == UInt64.max)
        let state = try BrokerState.load(
            meta: StateMeta(appliedIndex: 1, nowMillis: 1_765_000_000_000, limits: BrokerLimits()),
            sessions: [(key: RowKey.key(session.clientIdentifier.utf8), value: row)], retained: [], cursors: [])
        var actions: [BrokerAction] = []
        state.apply(.tick, atMillis: 1_765_000_100_000, into: &actions)
        #expect(state.sessions[ExactString(session.clientIdentifier)] != nil)

        let never = ApplicationMessage(
            topicName: "t", payload: ByteBuffer(), qos: .atMostOnce, retain: false, properties: Properties(),
            expiryDeadlineMillis: UInt64.max, originClientIdentifier: nil)
        let publish = never.publish(
            qos: .atMostOnce, retain: false, packetIdentifier: nil, subscriptionIdentifiers: [], nowMillis: 5)
        #expect(publish.properties.messageExpiryIntervalSeconds == UInt32.max)
        #expect(UInt64.max.millisAdding(seconds: 1) == UInt64.max)
        #expect(UInt64(1_000).millisAdding(seconds: 2) == 3_000)
    }

    // Goal: damaged fixtures are refused with the error that names the damage, never decoded
    // into something else.
    @Test func damagedFixturesAreRefused() throws {
        let good = try Self.fixture("log-record-v1.hex")
        func refusal(_ value: ByteBuffer, previousChain: [UInt8]? = LogRecord.genesisChain) -> String? {
            do {
                _ = try LogRecord.decode(key: LogRecord.key(42), value: value, previousChain: previousChain)
                return nil
            } catch {
                return error.description
            }
        }
        // Truncated: the last 10 bytes lost.
        let truncated = good.getSlice(at: 0, length: good.readableBytes - 10)!
        #expect(refusal(truncated)?.contains("checksum mismatch") == true)
        let stub = good.getSlice(at: 0, length: 20)!
        #expect(refusal(stub)?.contains("too short") == true)
        // One payload bit flipped.
        var flipped = good
        flipped.setInteger(flipped.getInteger(at: 40, as: UInt8.self)! ^ 0x04, at: 40)
        #expect(refusal(flipped)?.contains("checksum mismatch") == true)
        // A whole record that follows another chain.
        #expect(
            refusal(good, previousChain: [UInt8](repeating: 1, count: 32))?.contains("hash chain broken") == true)
        // A newer format, with a valid checksum.
        var newer = good.getSlice(at: 0, length: good.readableBytes - 4)!
        newer.setInteger(UInt8(2), at: 0)
        newer.writeInteger(CRC32C.checksum(newer))
        #expect(refusal(newer)?.contains("newer than this foxmq reads") == true)
        // A session row with a newer format and one with a count past its end.
        var row = try Self.fixture("session-row-v1.hex")
        row = row.getSlice(at: 0, length: row.readableBytes - 4)!
        row.setInteger(UInt8(9), at: 0)
        row.writeInteger(CRC32C.checksum(row))
        #expect(throws: RecordDecodeError.self) { try Session.decodeRow(row, key: Array("sub".utf8)) }
        do {
            _ = try Session.decodeRow(row, key: Array("sub".utf8))
        } catch {
            #expect(error.description.contains("newer"))
        }
    }

    // Goal: CRC-32C is the Castagnoli checksum (RFC 3720 test vector), not another one.
    @Test func crc32cMatchesTheStandardVector() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }
}
