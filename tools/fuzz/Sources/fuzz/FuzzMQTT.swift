import FoxMQTT
import NIOCore

/// libFuzzer harness of the wire decoder: every input is fed, as a stream, to the frame decoder
/// and the packet decoder of both protocol versions. More than "no crash": a packet that decodes
/// is encoded again, and that encoding decodes to the same packet (decode, re-encode, decode).
/// Built with `-sanitize=fuzzer,address` by `scripts/fuzz`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMQTT(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    for version in [ProtocolVersion.v5, .v311] {
        var decoder = FrameDecoder(maximumPacketSize: 1 << 20)
        var buffer = ByteBuffer(bytes: bytes)
        while true {
            let frame: Frame?
            do {
                frame = try decoder.nextFrame(from: &buffer)
            } catch {
                break
            }
            guard let frame else { break }
            guard let packet = try? Packet.decode(frame, version: version) else { break }
            var encoded = ByteBuffer()
            packet.encode(into: &encoded, version: version)
            var again = FrameDecoder(maximumPacketSize: 1 << 21)
            guard let reframed = try? again.nextFrame(from: &encoded),
                let decodedAgain = try? Packet.decode(reframed, version: version)
            else {
                fatalError("\(packet) re-encoded to bytes that do not decode")
            }
            if decodedAgain != packet {
                fatalError("round trip changed \(packet) into \(decodedAgain)")
            }
        }
    }
    return 0
}

#if FOXMQ_FUZZ
    // SwiftPM links an executable with `main` defined as `<module>_main`; libFuzzer's driver is
    // started from there (`LLVMFuzzerRunDriver`, libFuzzer's own main is then not linked).
    @_silgen_name("LLVMFuzzerRunDriver")
    private func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
    ) -> CInt

    @_cdecl("fuzz_mqtt_main")
    public func fuzzMQTTMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
        var count = argc
        var arguments = argv
        return LLVMFuzzerRunDriver(&count, &arguments, fuzzMQTT)
    }
#else
    // A plain build (`swift build`) compiles the harness but has no libFuzzer to link.
    @main
    enum FuzzMQTTWithoutLibFuzzer {
        static func main() {
            print("fuzz-mqtt: build and run it with scripts/fuzz (libFuzzer)")
        }
    }
#endif
