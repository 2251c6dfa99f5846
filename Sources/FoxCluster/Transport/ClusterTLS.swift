// swift-crypto does not mark its keys Sendable; they are immutable values.
@preconcurrency import Crypto
import FoxFiles
import Logging
import NIOCore
import NIOSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Optional TLS under the cluster handshake (`--cluster-cert`, `--cluster-root-cert`,
/// `--cluster-accept-peer-with-cert`), mutual on every connection.
///
/// The node's certificate must certify its address-book key: the TLS private key is the node
/// key, so no second secret is kept. A peer's certificate is checked in one of two ways:
/// - with root or accepted certificates given, by BoringSSL against them (chain and dates; no
///   host names: peers are addressed by IP);
/// - with neither, by the address book: the certificate's key must be a member's and the
///   certificate within its dates (self-signed node certificates work as they are).
/// In both, once the signed-nonce handshake says which member the peer is, the key its TLS
/// certificate holds must be that member's book key: TLS proved possession of the certificate's
/// key, so a relay between two members cannot read their traffic.
public struct ClusterTLS: Sendable {
    let serverContext: NIOSSLContext
    let clientContext: NIOSSLContext
    /// The members' keys (SubjectPublicKeyInfo DER) when the book is the trust anchor; nil when
    /// roots or accepted certificates are.
    let bookKeys: Set<[UInt8]>?

    /// A TLS file that cannot be used; the message names the file and the problem.
    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads the certificate files and checks them against this node's key. `nowSeconds`
    /// (Unix time) judges the certificate's dates.
    public static func load(
        certificatePath: String, rootCertificatePath: String?, acceptedPeerCertificatePaths: [String],
        key: P256.Signing.PrivateKey, members: [ClusterMember], nowSeconds: Int64
    ) throws(LoadError) -> ClusterTLS {
        let chain = try certificates(in: certificatePath, option: "--cluster-cert")
        let leaf = chain[0]
        let leafKey = try spki(of: leaf, path: certificatePath)
        guard leafKey == Array(key.publicKey.derRepresentation) else {
            throw LoadError(
                description:
                    "--cluster-cert \(certificatePath): the certificate is not of this node's key (--secret-key-file); the cluster certificate must certify the node's address-book key"
            )
        }
        if Int64(leaf.notValidAfter) < nowSeconds {
            throw LoadError(description: "--cluster-cert \(certificatePath): the certificate has expired")
        }
        if Int64(leaf.notValidBefore) > nowSeconds {
            throw LoadError(description: "--cluster-cert \(certificatePath): the certificate is not valid yet")
        }
        var anchors: [NIOSSLCertificate] = []
        if let rootCertificatePath {
            anchors += try certificates(in: rootCertificatePath, option: "--cluster-root-cert")
        }
        for path in acceptedPeerCertificatePaths {
            anchors += try certificates(in: path, option: "--cluster-accept-peer-with-cert")
        }
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)
        } catch {
            throw LoadError(description: "the node key cannot be used for TLS: \(error)")
        }
        func configuration(_ base: TLSConfiguration) -> TLSConfiguration {
            var configuration = base
            configuration.minimumTLSVersion = .tlsv12
            // Peers are addressed by IP and identified by their book keys, not by host names.
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = anchors.isEmpty ? .certificates([]) : .certificates(anchors)
            return configuration
        }
        let sources = chain.map { NIOSSLCertificateSource.certificate($0) }
        var client = TLSConfiguration.makeClientConfiguration()
        client.certificateChain = sources
        client.privateKey = .privateKey(privateKey)
        do {
            return ClusterTLS(
                serverContext: try NIOSSLContext(
                    configuration: configuration(
                        .makeServerConfiguration(certificateChain: sources, privateKey: .privateKey(privateKey)))),
                clientContext: try NIOSSLContext(configuration: configuration(client)),
                bookKeys: anchors.isEmpty ? Set(members.map(\.publicKeyDER)) : nil)
        } catch {
            throw LoadError(description: "--cluster-cert \(certificatePath): \(error)")
        }
    }

    private static func certificates(in path: String, option: String) throws(LoadError) -> [NIOSSLCertificate] {
        let bytes: [UInt8]
        do {
            guard let read = try Files.readIfExists(path) else {
                throw LoadError(description: "\(option) \(path): no such file")
            }
            bytes = read
        } catch let error as LoadError {
            throw error
        } catch {
            throw LoadError(description: "\(option) \(path): \(error)")
        }
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

    private static func spki(of certificate: NIOSSLCertificate, path: String) throws(LoadError) -> [UInt8] {
        do {
            return try certificate.extractPublicKey().toSPKIBytes()
        } catch {
            throw LoadError(description: "\(path): the certificate's key cannot be read (\(error))")
        }
    }

    // MARK: Channel handlers

    /// The TLS handler of an accepted (`server`) or dialed connection.
    func handler(server: Bool, logger: Logger, describe: @escaping @Sendable () -> String) throws -> NIOSSLHandler {
        guard let bookKeys else {
            return server
                ? NIOSSLServerHandler(context: serverContext)
                : try NIOSSLClientHandler(context: clientContext, serverHostname: nil)
        }
        let verify: NIOSSLCustomVerificationCallback = { certificates, promise in
            let verdict = Self.verifyByBook(certificates, bookKeys: bookKeys, nowSeconds: Int64(time(nil)))
            if let refusal = verdict {
                logger.warning("TLS: refused the certificate of \(describe()): \(refusal)")
                promise.succeed(.failed)
            } else {
                promise.succeed(.certificateVerified)
            }
        }
        return server
            ? NIOSSLServerHandler(context: serverContext, customVerificationCallback: verify)
            : try NIOSSLClientHandler(context: clientContext, serverHostname: nil, customVerificationCallback: verify)
    }

    /// Why the book refuses a peer's certificate chain, or nil when it accepts it.
    static func verifyByBook(_ certificates: [NIOSSLCertificate], bookKeys: Set<[UInt8]>, nowSeconds: Int64)
        -> String?
    {
        guard let leaf = certificates.first else { return "no certificate" }
        guard let key = try? leaf.extractPublicKey().toSPKIBytes() else { return "its key cannot be read" }
        guard bookKeys.contains(key) else { return "its key is not in the address book" }
        if Int64(leaf.notValidAfter) < nowSeconds { return "it has expired" }
        if Int64(leaf.notValidBefore) > nowSeconds { return "it is not valid yet" }
        return nil
    }

    /// The key (SubjectPublicKeyInfo DER) of the certificate the peer presented on `channel`,
    /// read on its event loop after the TLS handshake.
    static func peerKey(_ pipeline: ChannelPipeline.SynchronousOperations) -> [UInt8]? {
        guard let handler = try? pipeline.handler(type: NIOSSLHandler.self) else { return nil }
        return try? handler.peerCertificate?.extractPublicKey().toSPKIBytes()
    }
}
