import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

extension ClusterTransport {
    /// Sets the socket options of a cluster connection, either role: no Nagle delay (consensus
    /// messages are latency-bound), and on Linux dead-peer detection by the kernel. The
    /// acceptor never writes after the handshake, so neither side would notice a peer that
    /// vanished without a reset: on the dialer, data left unacknowledged for
    /// `deadPeerTimeoutMillis` closes the connection (TCP_USER_TIMEOUT) and it redials; on
    /// both, keepalive probes close a silent connection after about the same time.
    static func applySocketOptions(to channel: any Channel, deadPeerTimeoutMillis: Int64) throws {
        guard let options = channel.syncOptions else { return }
        try options.setOption(.socketOption(.tcp_nodelay), value: 1)
        #if os(Linux)
            let timeoutSeconds = max(2, Int(clamping: deadPeerTimeoutMillis / 1000))
            try options.setOption(.socketOption(.so_keepalive), value: 1)
            try options.setOption(tcp(TCP_KEEPIDLE), value: timeoutSeconds / 2)
            try options.setOption(tcp(TCP_KEEPINTVL), value: max(1, timeoutSeconds / 10))
            try options.setOption(tcp(TCP_KEEPCNT), value: 5)
            try options.setOption(
                tcp(TCP_USER_TIMEOUT), value: Int(clamping: min(deadPeerTimeoutMillis, Int64(Int32.max))))
        #endif
    }

    private static func tcp(_ name: CInt) -> ChannelOptions.Types.SocketOption {
        ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: name))
    }

    /// `host:port` of a socket address, for log lines.
    static func describe(_ address: SocketAddress?) -> String {
        guard let address else { return "?" }
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
