import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// The entry that carries several acknowledgements: strict both ways.
@Suite struct AcknowledgementBatchTests {
    static let connection = ConnectionID(node: 2, incarnation: 9, local: 40)

    // Goal: a batch decodes to the same events in the same order.
    @Test func roundTrips() {
        let events: [BrokerEvent] = [
            .pubAck(Self.connection, packetIdentifier: 1),
            .pubRec(Self.connection, packetIdentifier: 2, reasonCode: .success),
            .pubComp(Self.connection, packetIdentifier: 3),
            .pubRel(Self.connection, packetIdentifier: 4),
            .pubAck(ConnectionID(node: 2, incarnation: 9, local: 41), packetIdentifier: 65535),
        ]
        #expect(AcknowledgementBatch.decode(AcknowledgementBatch.encode(events)) == events)
    }

    // Goal: a body that is not a well-formed batch of acknowledgements is refused whole
    // (a malformed entry, applied as nothing on every node): one event, another kind of
    // event, trailing or missing bytes.
    @Test func malformedBatchesAreRefused() {
        let ack = BrokerEvent.pubAck(Self.connection, packetIdentifier: 7)
        let good = AcknowledgementBatch.encode([ack, ack])
        #expect(AcknowledgementBatch.decode(good) != nil)
        #expect(AcknowledgementBatch.decode(good + [0]) == nil)
        #expect(AcknowledgementBatch.decode(Array(good.dropLast())) == nil)
        var single = ByteBuffer()
        single.writeInteger(UInt16(1))
        single.writeInteger(UInt32(ack.encoded.readableBytes))
        single.writeImmutableBuffer(ack.encoded)
        #expect(AcknowledgementBatch.decode(Array(single.readableBytesView)) == nil)
        var smuggled = ByteBuffer()
        smuggled.writeInteger(UInt16(2))
        for event in [ack, BrokerEvent.sessionClose(Self.connection, SessionClose(cause: .normalDisconnect))] {
            smuggled.writeInteger(UInt32(event.encoded.readableBytes))
            smuggled.writeImmutableBuffer(event.encoded)
        }
        #expect(AcknowledgementBatch.decode(Array(smuggled.readableBytesView)) == nil)
        #expect(AcknowledgementBatch.decode([]) == nil)
    }
}
