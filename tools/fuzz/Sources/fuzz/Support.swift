#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One harness: a name for the command line, what it fuzzes, the check of one input, and the
/// seed inputs (`--write-seeds`), made by encoding real values.
struct Harness: Sendable {
    var name: String
    var summary: String
    var run: @Sendable ([UInt8]) -> Void
    var seeds: @Sendable () -> [Seed]
    /// The fixed part of the time bound of one input (see `Timing.bound`).
    var fixedNanos: UInt64 = Timing.fixedNanos
    /// Whether LeakSanitizer checks the runs (off for code that leaks by design of a dependency:
    /// then libFuzzer does not check each run, and what the runs allocate is not reported at
    /// exit either).
    var findsLeaks = true

    /// Runs the check of one input under the time bound, in CPU time: a run slower than
    /// `Timing.bound` is repeated twice (the first run of a process also pays for lazy globals,
    /// and page faults and caches vary), and only three slow runs in a row fail.
    func runTimed(_ bytes: [UInt8]) {
        let bound = Timing.bound(bytes.count, fixed: fixedNanos)
        var times: [UInt64] = []
        while times.count < 3 {
            let elapsed = Timing.measureDecoding { run(bytes) }
            if elapsed <= bound { return }
            times.append(elapsed)
        }
        fatalError(
            "\(name): \(bytes.count) bytes took \(times.map(Timing.text).joined(separator: ", ")); "
                + "the bound is \(Timing.text(bound)) (decoding is not linear in its input?)")
    }
}

struct Seed: Sendable {
    var name: String
    var bytes: [UInt8]

    init(_ name: String, _ bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }
}

/// The time bound of one input, and the monotonic clock it is measured with.
enum Timing {
    /// A generous bound under AddressSanitizer and coverage instrumentation: 20 ms (a harness
    /// with more fixed work per input, files or a channel, says how much) plus 50 µs per input
    /// byte (225 ms for libFuzzer's 4096-byte inputs). Linear decoders stay far below; one
    /// quadratic in its input reaches it on long inputs. `FOXMQ_FUZZ_BOUND_SCALE` multiplies it
    /// (e.g. for a debug build).
    static let fixedNanos: UInt64 = 20_000_000
    static let perByteNanos: UInt64 = 50_000
    static let scale: UInt64 = getenv("FOXMQ_FUZZ_BOUND_SCALE").flatMap { UInt64(String(cString: $0)) } ?? 1

    static func bound(_ size: Int, fixed: UInt64 = fixedNanos) -> UInt64 {
        (fixed + perByteNanos * UInt64(size)) * scale
    }

    /// The CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`, monotonic): the work done,
    /// not the time waited while the machine runs something else or the process is stopped.
    static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    static func measure(_ body: () -> Void) -> UInt64 {
        let start = now()
        body()
        return now() - start
    }

    /// Time spent in `untimed` during the current run (the size-amplifying checks: their inputs
    /// are not the run's).
    nonisolated(unsafe) static var untimedNanos: UInt64 = 0

    /// The time of `body` without what it ran in `untimed`.
    static func measureDecoding(_ body: () -> Void) -> UInt64 {
        untimedNanos = 0
        let elapsed = measure(body)
        return elapsed - min(elapsed, untimedNanos)
    }

    /// Runs `body` outside the time bound of the current run.
    static func untimed(_ body: () -> Void) {
        untimedNanos += measure(body)
    }

    static func text(_ nanos: UInt64) -> String {
        let micros = nanos / 1000
        return micros >= 10_000 ? "\(micros / 1000) ms" : "\(micros) µs"
    }

    /// The size-amplifying check: `decode(k)` decodes an input built from k copies of a piece.
    /// A linear decoder takes about 4 times as long for 4k copies as for k; a quadratic one 16
    /// times. A ratio above 10 is measured twice more (each size the fastest of three runs) and
    /// fails when it stays above 10; runs too short to time (under 1 ms for 4k) pass.
    static func checkLinear(_ what: @autoclosure () -> String, copies: Int, decode: (Int) -> Void) {
        func ratio(runs: Int) -> Double? {
            var small = UInt64.max
            var large = UInt64.max
            for _ in 0..<runs {
                small = min(small, measure { decode(copies) })
                large = min(large, measure { decode(copies * 4) })
            }
            guard large >= 1_000_000 * scale else { return nil }
            return Double(large) / Double(max(small, 1))
        }
        guard let first = ratio(runs: 1), first > 10 else { return }
        var ratios = [first]
        for _ in 0..<2 {
            guard let again = ratio(runs: 3), again > 10 else { return }
            ratios.append(again)
        }
        fatalError(
            "\(what()): \(copies * 4) copies took \(ratios.map { Int($0) }) times as long as \(copies) (linear: 4)")
    }
}

/// Writes a line to standard error.
func printError(_ text: String) {
    var line = text.hasSuffix("\n") ? text : text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// Fails the run (libFuzzer keeps the input as a crash) when `condition` does not hold.
func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID,
    line: UInt = #line
) {
    if !condition() { fatalError(message(), file: file, line: line) }
}

/// The value of `body`, which cannot fail for the values the harness gives it (seeds, setup).
func must<Value>(_ what: @autoclosure () -> String, _ body: () throws -> Value) -> Value {
    do {
        return try body()
    } catch {
        fatalError("\(what()): \(error)")
    }
}

/// Takes an input apart: selector bytes, lengths, slices. Reading past the end gives zeros and
/// empty slices, so every input is a valid program for the harness.
struct FuzzInput {
    let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() -> UInt16 { UInt16(byte()) << 8 | UInt16(byte()) }

    mutating func take(_ count: Int) -> [UInt8] {
        let count = min(max(count, 0), remaining)
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func rest() -> [UInt8] { take(remaining) }
}

/// Splits `bytes` into consecutive chunks whose sizes come from `sizes` (cycled; 0 counts as 1):
/// how a stream decoder sees the same bytes arrive in several reads.
func chunks(of bytes: [UInt8], sizes: [UInt8]) -> [[UInt8]] {
    guard !sizes.isEmpty else { return bytes.isEmpty ? [] : [bytes] }
    var result: [[UInt8]] = []
    var offset = 0
    var turn = 0
    while offset < bytes.count {
        let size = min(max(Int(sizes[turn % sizes.count]), 1), bytes.count - offset)
        result.append(Array(bytes[offset..<offset + size]))
        offset += size
        turn += 1
    }
    return result
}

/// A cheap hash of the input, to run the costlier checks on a reproducible sample of inputs.
func sample(_ bytes: [UInt8], oneIn count: UInt32) -> Bool {
    var hash: UInt32 = 2_166_136_261
    for byte in bytes { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
    return hash % count == 0
}

extension Array where Element == UInt8 {
    init(bigEndian value: some FixedWidthInteger) {
        self = Swift.withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }
}
