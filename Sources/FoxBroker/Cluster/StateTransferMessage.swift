import FoxBrokerStore

/// The messages of a state transfer, beside the consensus messages on the same links. A node
/// whose core installed checkpoint k by state sync (it was behind the blocks its peers retain)
/// asks every peer where its rows stand, takes a position at least k that f+1 peers offer alike
/// (so one honest node vouches for its digest), fetches those rows in bounded chunks from one
/// of them, checks the digest of the loaded state, and goes on from there (R7: the core is
/// handed a digest, never the whole state).
///
/// Format: a tag byte no consensus message starts with (those start with their version, 1),
/// then the type and the fields, big-endian.
enum StateTransferMessage: Equatable {
    case offerRequest
    /// The position of the sender's rows (nil: it has none yet).
    case offer(RowsPosition?)
    case chunkRequest(RowsPosition, table: TransferRow.Table, after: [UInt8]?)
    /// Rows of one table after the requested key; `complete` when the table is done; nil rows
    /// when the sender's rows moved on from the position (start over).
    case chunk(RowsPosition, table: TransferRow.Table, rows: [TransferRow]?, complete: Bool)

    static let tag: UInt8 = 0xF5
    static let maxRows = 1 << 20
    static let maxFieldBytes = 256 << 20

    var encoded: [UInt8] {
        var bytes: [UInt8] = [Self.tag]
        func u32(_ value: Int) { bytes += NodeStore.bigEndian(UInt32(value)) }
        func field(_ value: [UInt8]) {
            u32(value.count)
            bytes += value
        }
        switch self {
        case .offerRequest:
            bytes.append(1)
        case .offer(let position):
            bytes.append(2)
            if let position {
                bytes.append(1)
                bytes += position.encoded
            } else {
                bytes.append(0)
            }
        case .chunkRequest(let position, let table, let after):
            bytes.append(3)
            bytes += position.encoded
            bytes.append(table.rawValue)
            if let after {
                bytes.append(1)
                field(after)
            } else {
                bytes.append(0)
            }
        case .chunk(let position, let table, let rows, let complete):
            bytes.append(4)
            bytes += position.encoded
            bytes.append(table.rawValue)
            bytes.append(complete ? 1 : 0)
            if let rows {
                bytes.append(1)
                u32(rows.count)
                for row in rows {
                    field(row.key)
                    field(row.value)
                }
            } else {
                bytes.append(0)
            }
        }
        return bytes
    }

    /// Strict decoding; nil for anything malformed (a peer's garbage is dropped, never trusted).
    static func decode(_ bytes: [UInt8]) -> StateTransferMessage? {
        var offset = 0
        func take(_ count: Int) -> [UInt8]? {
            guard count >= 0, bytes.count - offset >= count else { return nil }
            defer { offset += count }
            return Array(bytes[offset..<offset + count])
        }
        func byte() -> UInt8? { take(1)?.first }
        func u32() -> Int? { take(4).flatMap { NodeStore.integer($0, as: UInt32.self) }.map { Int($0) } }
        func field() -> [UInt8]? {
            guard let count = u32(), count <= maxFieldBytes else { return nil }
            return take(count)
        }
        func position() -> RowsPosition? { take(80).flatMap { RowsPosition(encoded: $0) } }
        func table() -> TransferRow.Table? { byte().flatMap { TransferRow.Table(rawValue: $0) } }
        guard byte() == tag, let type = byte() else { return nil }
        let message: StateTransferMessage?
        switch type {
        case 1:
            message = .offerRequest
        case 2:
            switch byte() {
            case 0: message = .offer(nil)
            case 1: message = position().map { .offer($0) }
            default: message = nil
            }
        case 3:
            guard let at = position(), let table = table(), let present = byte() else { return nil }
            switch present {
            case 0: message = .chunkRequest(at, table: table, after: nil)
            case 1: message = field().map { .chunkRequest(at, table: table, after: $0) }
            default: message = nil
            }
        case 4:
            guard let at = position(), let table = table(), let complete = byte(), complete <= 1,
                let present = byte()
            else { return nil }
            if present == 0 {
                message = .chunk(at, table: table, rows: nil, complete: complete == 1)
            } else if present == 1, let count = u32(), count <= maxRows {
                var rows: [TransferRow] = []
                for _ in 0..<count {
                    guard let key = field(), let value = field() else { return nil }
                    rows.append(TransferRow(table: table, key: key, value: value))
                }
                message = .chunk(at, table: table, rows: rows, complete: complete == 1)
            } else {
                message = nil
            }
        default:
            message = nil
        }
        return offset == bytes.count ? message : nil
    }
}
