/// Any MQTT control packet, as a value (MQTT 5.0 §2.1.2).
public enum Packet: Hashable, Sendable {
    case connect(Connect)
    case connAck(ConnAck)
    case publish(Publish)
    case pubAck(PubAck)
    case pubRec(PubRec)
    case pubRel(PubRel)
    case pubComp(PubComp)
    case subscribe(Subscribe)
    case subAck(SubAck)
    case unsubscribe(Unsubscribe)
    case unsubAck(UnsubAck)
    case pingReq
    case pingResp
    case disconnect(Disconnect)
    case auth(Auth)

    public var packetType: PacketType {
        switch self {
        case .connect: .connect
        case .connAck: .connAck
        case .publish: .publish
        case .pubAck: .pubAck
        case .pubRec: .pubRec
        case .pubRel: .pubRel
        case .pubComp: .pubComp
        case .subscribe: .subscribe
        case .subAck: .subAck
        case .unsubscribe: .unsubscribe
        case .unsubAck: .unsubAck
        case .pingReq: .pingReq
        case .pingResp: .pingResp
        case .disconnect: .disconnect
        case .auth: .auth
        }
    }
}

/// The control packet type, the high nibble of the first byte (§2.1.2).
public enum PacketType: UInt8, Hashable, Sendable {
    case connect = 1, connAck, publish, pubAck, pubRec, pubRel, pubComp, subscribe, subAck
    case unsubscribe, unsubAck, pingReq, pingResp, disconnect, auth
}
