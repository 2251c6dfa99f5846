import FoxBrokerCore
import NIOCore

/// Several acknowledgements of this node's clients in one consensus entry (kind
/// `ConsensusOrderer.acknowledgementBatchKind`): a subscriber acknowledges every QoS 1/2
/// delivery, so acknowledgements are about half of a busy cluster's events; one entry for all
/// those a pass of the core thread drained saves the per-entry cost (identifier, payload
/// encoding and hashing, commit bookkeeping). Every node applies them in order, each with the
/// origin check, exactly as if they had been entries of their own.
///
/// Encoding: u16 count (2 or more), then per event a u32 length and its canonical encoding.
enum AcknowledgementBatch {
    /// At most this many acknowledgements per entry.
    static let countMax = 4096

    static func encode(_ events: [BrokerEvent]) -> [UInt8] {
        precondition(events.count >= 2 && events.count <= countMax, "a batch holds 2...\(countMax) events")
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt16(events.count))
        for event in events {
            precondition(event.isBatchedAcknowledgement, "only acknowledgements are batched")
            let encoded = event.encoded
            buffer.writeInteger(UInt32(encoded.readableBytes))
            buffer.writeImmutableBuffer(encoded)
        }
        return Array(buffer.readableBytesView)
    }

    /// The events, or nil when the body is not a well-formed batch of acknowledgements.
    static func decode(_ body: [UInt8]) -> [BrokerEvent]? {
        var buffer = ByteBuffer(bytes: body)
        guard let count = buffer.readInteger(as: UInt16.self), count >= 2, count <= countMax else { return nil }
        var events: [BrokerEvent] = []
        events.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let length = buffer.readInteger(as: UInt32.self), let slice = buffer.readSlice(length: Int(length)),
                let event = try? BrokerEvent.decode(slice), event.isBatchedAcknowledgement
            else { return nil }
            events.append(event)
        }
        return buffer.readableBytes == 0 ? events : nil
    }
}

extension BrokerEvent {
    /// The acknowledgements a client sends for deliveries and releases: never refused, small,
    /// and many.
    var isBatchedAcknowledgement: Bool {
        switch self {
        case .pubAck, .pubRec, .pubComp, .pubRel: true
        default: false
        }
    }
}
