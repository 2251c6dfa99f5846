import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// Every idle client costs its session and its connection state, so their inline sizes are
/// bounded here: a field that makes them grow (a CONNECT or a will stored inline, a copy of the
/// limits) fails this test instead of quietly raising the broker's memory per connection.
@Suite struct MemoryLayoutTests {
    @Test func sessionStaysSmall() {
        // Each session occupies a slot of the session table, which keeps spare slots.
        #expect(MemoryLayout<Session>.stride <= 176)
        #expect(MemoryLayout<OutboundFlow>.stride <= 72)
    }

    @Test func connectionStateStaysSmall() {
        #expect(MemoryLayout<ConnectionStateMachine.State>.stride <= 104)
        #expect(MemoryLayout<ConnectionStateMachine>.stride <= 160)
    }

    @Test func willsLiveOutOfLineAndKeepValueSemantics() {
        var session = Session(
            open: SessionOpen(
                connection: ConnectionID(node: 0, local: 1), clientIdentifier: "c", protocolVersion: .v5,
                cleanStart: true, sessionExpiryIntervalSeconds: 0, will: nil, receiveMaximum: 10,
                maximumPacketSize: nil),
            inflightCountMax: 10)
        #expect(session.will == nil)
        let will = Will(topicName: "t", payload: ByteBuffer(string: "bye"), qos: .atLeastOnce, retain: false)
        session.will = will
        let copy = session
        session.will = nil
        #expect(session.will == nil)
        #expect(copy.will == will)
    }
}
