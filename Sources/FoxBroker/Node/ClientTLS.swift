import FoxFiles
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOTLS

/// TLS for MQTT clients (`--mqtts-addr`, `--wss-addr`): the certificate chain and key from PEM
/// files, TLS 1.2 and 1.3 only, and, with a client CA, client certificates required and
/// verified. The files are read again by `reload` (SIGHUP): connections made after it use the
/// new certificate, open ones keep theirs.
public final class ClientTLS: Sendable {
    public struct Files: Sendable, Equatable {
        public var certificatePath: String
        public var keyPath: String
        /// Client certificates are required and must chain to these CA certificates.
        public var clientCAPath: String?

        public init(certificatePath: String, keyPath: String, clientCAPath: String? = nil) {
            self.certificatePath = certificatePath
            self.keyPath = keyPath
            self.clientCAPath = clientCAPath
        }
    }

    /// A file that cannot be used: the message names the file and the problem.
    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    public let files: Files
    private let context: NIOLockedValueBox<NIOSSLContext>
    /// The server certificate's end of validity (Unix seconds), for the start-up warning.
    public let notValidAfter: Int64

    public init(files: Files) throws(LoadError) {
        self.files = files
        let loaded = try Self.load(files)
        context = NIOLockedValueBox(loaded.context)
        notValidAfter = loaded.notValidAfter
    }

    /// Reads the files again; on failure the certificate in use stays.
    public func reload() throws(LoadError) {
        let loaded = try Self.load(files)
        context.withLockedValue { $0 = loaded.context }
    }

    /// The TLS handlers of a new connection: TLS itself, then the count of failed handshakes.
    func addHandlers(to pipeline: ChannelPipeline.SynchronousOperations, metrics: BrokerMetrics) throws {
        try pipeline.addHandler(NIOSSLServerHandler(context: context.withLockedValue { $0 }))
        try pipeline.addHandler(HandshakeWatch(metrics: metrics))
    }

    /// Counts a connection whose TLS handshake failed (an untrusted, expired or missing client
    /// certificate, a protocol version refused, plain MQTT on the TLS port) as refused, reason
    /// `tls_handshake`; it passes everything on and leaves the pipeline once the handshake is done.
    /// A peer that closes before finishing its part (a TCP health check, a port scan) was refused
    /// nothing and is not counted.
    final class HandshakeWatch: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = NIOAny
        private let metrics: BrokerMetrics
        private var counted = false

        init(metrics: BrokerMetrics) {
            self.metrics = metrics
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            // Passed on first: once removed, this context no longer reaches the next handler.
            context.fireUserInboundEventTriggered(event)
            if case TLSUserEvent.handshakeCompleted = event {
                context.pipeline.syncOperations.removeHandler(self, promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if !counted, Self.isRefusal(error) {
                counted = true
                metrics.tlsHandshakeFailed()
            }
            context.fireErrorCaught(error)
        }

        static func isRefusal(_ error: any Error) -> Bool {
            switch error {
            case NIOSSLError.handshakeFailed(.sslError(let messages)) where messages == [.eofDuringHandshake]:
                return false
            case is NIOSSLError, is BoringSSLError:
                return true
            default:
                return false
            }
        }
    }

    private static func load(_ files: Files) throws(LoadError) -> (context: NIOSSLContext, notValidAfter: Int64) {
        let chain = try certificates(files.certificatePath, option: "--tls-cert")
        let keyBytes = try read(files.keyPath, option: "--tls-key")
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw LoadError(description: "--tls-key \(files.keyPath): not a PEM private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        if let clientCAPath = files.clientCAPath {
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(try certificates(clientCAPath, option: "--tls-client-ca"))
        }
        do {
            // BoringSSL checks here that the key belongs to the certificate.
            return (try NIOSSLContext(configuration: configuration), Int64(chain[0].notValidAfter))
        } catch {
            throw LoadError(
                description:
                    "--tls-key \(files.keyPath) does not match --tls-cert \(files.certificatePath), or cannot be used (\(error))"
            )
        }
    }

    private static func read(_ path: String, option: String) throws(LoadError) -> [UInt8] {
        do {
            guard let bytes = try FoxFiles.Files.readIfExists(path) else {
                throw LoadError(description: "\(option) \(path): no such file")
            }
            return bytes
        } catch let error as LoadError {
            throw error
        } catch {
            throw LoadError(description: "\(option) \(path): \(error)")
        }
    }

    private static func certificates(_ path: String, option: String) throws(LoadError) -> [NIOSSLCertificate] {
        let bytes = try read(path, option: option)
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw LoadError(description: "\(option) \(path): not a PEM certificate (\(error))")
        }
        guard !certificates.isEmpty else {
            throw LoadError(description: "\(option) \(path): no certificate in the file")
        }
        return certificates
    }

    /// The common name of the client certificate on this pipeline, for `--tls-cert-as-username`:
    /// `.missing` when the connection is TLS but the certificate has none, `.none` when the
    /// connection is not TLS.
    static func certificateIdentity(_ pipeline: ChannelPipeline.SynchronousOperations) -> CertificateIdentity {
        guard let handler = try? pipeline.handler(type: NIOSSLHandler.self) else { return .none }
        guard let name = handler.peerCertificate?.subjectName.last(where: { $0.type == .commonName })?.value,
            !name.isEmpty
        else { return .missing }
        return .name(name)
    }
}

/// Who a client certificate says the client is (`--tls-cert-as-username`).
enum CertificateIdentity: Equatable {
    /// Not a TLS connection, or names are not taken from certificates: CONNECT's user name and
    /// password decide.
    case none
    /// The certificate's common name: the user name, authenticated by the certificate.
    case name(String)
    /// A TLS connection whose certificate has no common name: refused (0x87).
    case missing
}
