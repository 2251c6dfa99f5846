#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The libFuzzer harnesses of every decoder a peer or a file reaches, in one executable:
///
///     fuzz HARNESS [libFuzzer options and corpus directories...]
///     fuzz HARNESS --write-seeds DIR       writes the harness's seed inputs (real values, encoded)
///     fuzz --list                          the harnesses, one a line
///
/// `scripts/fuzz` builds it with `-sanitize=fuzzer,address -DFOXMQ_FUZZ` in `.build-fuzz`. A plain
/// build has no libFuzzer: there `fuzz HARNESS FILE|DIR...` runs the harness once over each file
/// (a crash found by the fuzzer can be replayed under the debugger that way).
///
/// Each harness checks more than "no crash": what decodes is encoded again and that decodes to
/// the same value (or the same canonical bytes), and every run is timed against a bound linear in
/// the input size (`Harness.runTimed`).
enum Harnesses {
    static let all: [Harness] = [
        mqttHarness, propertiesHarness, webSocketHarness, usersTOMLHarness, addressBookHarness, recordsHarness,
        snapshotHarness, consensusHarness, clusterHarness,
    ]

    static func named(_ name: String) -> Harness? { all.first { $0.name == name } }

    static var usage: String {
        "usage: fuzz HARNESS [libFuzzer options...] | fuzz HARNESS --write-seeds DIR | fuzz --list\nharnesses:\n"
            + all.map { "  \($0.name): \($0.summary)" }.joined(separator: "\n")
    }
}

/// The environment variable that names the harness, for the processes libFuzzer starts itself
/// (`-fork`, `-jobs`, `-minimize_crash`) with the arguments it was given, HARNESS removed.
let harnessVariable = "FOXMQ_FUZZ_HARNESS"

/// The harness libFuzzer's callback runs (set once, before the driver starts).
nonisolated(unsafe) var selectedHarness: Harness?

/// libFuzzer's callback: runs the selected harness on one input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let harness = selectedHarness else { fatalError("fuzz: no harness selected") }
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    harness.runTimed(bytes)
    return 0
}

/// What the command line asks for once the harness is known.
enum Invocation {
    case exit(CInt)
    /// Run the fuzzer (or, in a plain build, the given files) with these remaining arguments.
    case run(Harness, [String])
}

/// Reads `fuzz HARNESS ...`, handles `--list` and `--write-seeds`; `arguments` excludes argv[0].
func parseInvocation(_ arguments: [String]) -> Invocation {
    if arguments.first == "--list" {
        for harness in Harnesses.all { print(harness.name) }
        return .exit(0)
    }
    if arguments.first == "-h" || arguments.first == "--help" {
        print(Harnesses.usage)
        return .exit(0)
    }
    var rest = arguments
    let harness: Harness
    if let name = rest.first, let named = Harnesses.named(name) {
        harness = named
        rest.removeFirst()
    } else if let name = getenv(harnessVariable).map({ String(cString: $0) }), let named = Harnesses.named(name) {
        harness = named
    } else {
        let given = arguments.first.map { "unknown harness \($0.debugDescription)\n" } ?? ""
        printError(given + Harnesses.usage)
        return .exit(2)
    }
    setenv(harnessVariable, harness.name, 1)
    if let flag = rest.firstIndex(of: "--write-seeds") {
        guard flag + 1 < rest.count else {
            printError("fuzz: --write-seeds needs a directory")
            return .exit(2)
        }
        return .exit(writeSeeds(harness, to: rest[flag + 1]))
    }
    return .run(harness, rest)
}

/// Writes every seed of `harness` into `directory` (created if missing), one file each.
func writeSeeds(_ harness: Harness, to directory: String) -> CInt {
    var path = directory.hasPrefix("/") ? "" : "."
    for component in directory.split(separator: "/") {
        path += "/" + component
        mkdir(path, 0o755)
    }
    var written = 0
    for seed in harness.seeds() {
        // A seed must pass its own harness: a seed generator that drifts from the codec is a bug.
        harness.runTimed(seed.bytes)
        let path = directory + "/" + seed.name
        guard let file = fopen(path, "wb") else {
            printError("fuzz: cannot create \(path)")
            return 1
        }
        let count = seed.bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
        guard count == seed.bytes.count else {
            printError("fuzz: cannot write \(path)")
            return 1
        }
        written += 1
    }
    print("\(harness.name): \(written) seeds in \(directory)")
    return 0
}

#if FOXMQ_FUZZ
    // SwiftPM links an executable with `main` defined as `<module>_main`; libFuzzer's driver is
    // started from there (`LLVMFuzzerRunDriver`; libFuzzer's own main is then not linked).
    @_silgen_name("LLVMFuzzerRunDriver")
    private func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    @_silgen_name("__lsan_disable")
    private func __lsan_disable()

    @_cdecl("fuzz_main")
    public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
        let arguments = (1..<Int(argc)).map { String(cString: argv![$0]!) }
        switch parseInvocation(arguments) {
        case .exit(let status):
            return status
        case .run(let harness, let rest):
            selectedHarness = harness
            // libFuzzer's arguments: argv[0], the harness's, and everything after HARNESS. Never
            // freed: the driver keeps them for the whole run.
            var driverArguments = [String(cString: argv![0]!)]
            if !harness.findsLeaks {
                driverArguments.append("-detect_leaks=0")
                __lsan_disable()
            }
            driverArguments += rest
            let vector = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(
                capacity: driverArguments.count + 1)
            for (position, argument) in driverArguments.enumerated() { vector[position] = strdup(argument) }
            vector[driverArguments.count] = nil
            var count = CInt(driverArguments.count)
            var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = vector
            return LLVMFuzzerRunDriver(&count, &arguments, fuzzOneInput)
        }
    }
#else
    // A plain build (`swift build`) has no libFuzzer to link: it replays files through a harness.
    @main
    enum FuzzWithoutLibFuzzer {
        static func main() {
            let arguments = Array(CommandLine.arguments.dropFirst())
            switch parseInvocation(arguments) {
            case .exit(let status):
                exit(status)
            case .run(let harness, let files):
                guard !files.isEmpty else {
                    print("fuzz: build and run it with scripts/fuzz (libFuzzer); this build replays files:")
                    print("  fuzz \(harness.name) FILE|DIR...")
                    exit(0)
                }
                var count = 0
                for path in files {
                    for file in inputFiles(path) {
                        guard let bytes = readFile(file) else {
                            printError("fuzz: cannot read \(file)")
                            exit(1)
                        }
                        harness.runTimed(bytes)
                        count += 1
                    }
                }
                print("\(harness.name): \(count) inputs passed")
            }
        }
    }

    /// `path` itself, or the regular files in it when it is a directory (one level, sorted).
    func inputFiles(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [path] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if !name.hasPrefix(".") { names.append(path + "/" + name) }
        }
        return names.sorted()
    }

    func readFile(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        return bytes
    }
#endif
