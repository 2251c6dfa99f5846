import Foundation
import Histogram
import NIOCore
import Synchronization

/// Counters shared by all connections, read by the progress line. Connections add to them once
/// per read or write batch, not once per message.
public final class SharedCounters: Sendable {
    public let sent = Atomic<UInt64>(0)
    public let acked = Atomic<UInt64>(0)
    public let delivered = Atomic<UInt64>(0)
    public let disconnects = Atomic<UInt64>(0)
    public let ackErrors = Atomic<UInt64>(0)
    public let foreign = Atomic<UInt64>(0)
    /// Deliveries by publisher index, for the end-to-end window.
    public let deliveredBy: [AtomicCounter]
    public init(publishers: Int = 0) {
        deliveredBy = (0..<publishers).map { _ in AtomicCounter() }
    }

    @inline(__always)
    static func add(_ atomic: borrowing Atomic<UInt64>, _ value: UInt64) {
        if value > 0 { atomic.add(value, ordering: .relaxed) }
    }
}

/// Latency histograms of one event loop, shared by the connections on it (so their number does
/// not grow with the connections). Only touched from that loop.
public final class LoopStats: @unchecked Sendable {
    /// Publish-to-deliver, microseconds.
    public var latency = LoopStats.makeHistogram()
    /// PUBLISH to PUBACK (QoS 1) or PUBCOMP (QoS 2), microseconds.
    public var ackLatency = LoopStats.makeHistogram()

    public static func makeHistogram() -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(
            lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        return histogram
    }
}

/// An atomic counter that can be kept in an array.
public final class AtomicCounter: Sendable {
    public let value = Atomic<UInt64>(0)
    public init() {}
}

/// LoopStats by event loop.
public final class LoopStatsRegistry: Sendable {
    private let byLoop: [ObjectIdentifier: LoopStats]
    public let loops: [any EventLoop]

    public init(group: any EventLoopGroup) {
        var loops: [any EventLoop] = []
        var byLoop: [ObjectIdentifier: LoopStats] = [:]
        for loop in group.makeIterator() {
            loops.append(loop)
            byLoop[ObjectIdentifier(loop)] = LoopStats()
        }
        self.loops = loops
        self.byLoop = byLoop
    }

    public func stats(for loop: any EventLoop) -> LoopStats {
        byLoop[ObjectIdentifier(loop)]!
    }

    /// The histograms of all loops, merged (read on each loop).
    public func merged() async throws -> (latency: Histogram<UInt64>, ackLatency: Histogram<UInt64>) {
        var latency = LoopStats.makeHistogram()
        var ackLatency = LoopStats.makeHistogram()
        for loop in loops {
            let stats = self.stats(for: loop)
            let (l, a) = try await loop.submit { (stats.latency, stats.ackLatency) }.get()
            latency.add(l)
            ackLatency.add(a)
        }
        return (latency, ackLatency)
    }
}

/// A histogram in the report: microseconds.
public struct LatencySummary: Codable, Sendable {
    public var count: UInt64
    public var p50: UInt64
    public var p90: UInt64
    public var p99: UInt64
    public var p999: UInt64
    public var max: UInt64
    public var mean: Double

    public init(_ histogram: Histogram<UInt64>) {
        count = histogram.totalCount
        if count == 0 {
            p50 = 0; p90 = 0; p99 = 0; p999 = 0; max = 0; mean = 0
            return
        }
        p50 = histogram.valueAtPercentile(50)
        p90 = histogram.valueAtPercentile(90)
        p99 = histogram.valueAtPercentile(99)
        p999 = histogram.valueAtPercentile(99.9)
        max = histogram.max
        mean = histogram.mean
    }
}

/// Resident set size of a process, from /proc/PID/status (kilobytes), or nil.
public func residentSetKilobytes(pid: Int32) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let digits = line.dropFirst(6).filter { $0.isNumber }
        return Int(digits)
    }
    return nil
}
