import ArgumentParser
import FoxBrokerStore
import FoxStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Exit codes: 0 all good, 1 problems found or the store cannot be read, 3 a command whose
/// data source is not available in this build. (64: bad usage, from ArgumentParser.)
enum ExitStatus {
    static let problems: Int32 = 1
    static let notAvailable: Int32 = 3
}

/// The options every command shares: where the store is and how to print.
struct StoreOptions: ParsableArguments {
    @Argument(help: "The configuration directory, as for `foxmq run`.")
    var directory: String = "foxmq.d"

    @Option(
        name: .customLong("data-dir"),
        help: ArgumentHelp("The node's store (default DIR/data).", valueName: "PATH"))
    var dataDir: String?

    @Flag(help: "Print one JSON document (stable key order) instead of text.")
    var json = false

    var storePath: String { dataDir ?? directory + "/data" }

    /// Opens the store read-only, or prints why not and exits non-zero.
    func open() throws -> NodeStore {
        let path = storePath
        CrashGuard.install(dataFile: path + "/data.mdb")
        do {
            return try NodeStore(directory: path, options: LMDBOptions(readOnly: true))
        } catch {
            throw fail(Self.message(error))
        }
    }

    /// Prints `message` (on stderr; with `--json` also as `{"error": ...}` on stdout) and gives
    /// the exit to throw.
    func fail(_ message: String, code: Int32 = ExitStatus.problems) -> ExitCode {
        if json { Output.line(JSON.object([("error", .string(message))]).serialized()) }
        Output.error("foxdump: \(message)")
        return ExitCode(code)
    }

    static func message(_ error: NodeStoreError) -> String {
        switch error {
        case .corrupt(let file, let table, let keys, let detail):
            return "\(file): damaged data in table \(table), \(keys): \(detail)"
        default:
            return error.description
        }
    }
}

enum Output {
    static func line(_ text: String) {
        print(text)
    }

    /// A line on standard error (unbuffered).
    static func error(_ text: String) {
        let bytes = Array((text + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return write(2, base + offset, buffer.count - offset)
            }
            if written <= 0 { return }
            offset += written
        }
    }
}

/// LMDB keeps no checksums on its pages: a damaged branch page can send a read outside the map
/// (SIGSEGV) or past the end of the file (SIGBUS) before any check of ours runs. foxdump then
/// says which file is damaged and exits with status 1 instead of dying with a signal. (Swift
/// traps are not caught: those are bugs and keep their own message.)
enum CrashGuard {
    nonisolated(unsafe) private static var message: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) private static var messageLength = 0
    nonisolated(unsafe) private static var installed = false

    static func install(dataFile: String) {
        let text =
            "foxdump: \(dataFile): memory fault while reading the store: the file is damaged in a way "
            + "LMDB does not detect (it keeps no page checksums). Restore a snapshot, or move the data "
            + "directory away to start empty.\n"
        message = strdup(text)
        messageLength = text.utf8.count
        guard !installed else { return }
        installed = true
        let stackSize = 1 << 16
        if let memory = malloc(stackSize) {
            var stack = stack_t()
            stack.ss_sp = memory
            stack.ss_size = stackSize
            stack.ss_flags = 0
            _ = sigaltstack(&stack, nil)
        }
        var action = sigaction()
        #if canImport(Darwin)
            action.__sigaction_u.__sa_handler = crashGuardHandler
        #else
            action.__sigaction_handler.sa_handler = crashGuardHandler
        #endif
        action.sa_flags = Int32(SA_ONSTACK)
        sigemptyset(&action.sa_mask)
        _ = sigaction(SIGSEGV, &action, nil)
        _ = sigaction(SIGBUS, &action, nil)
    }

    fileprivate static func report() {
        if let message { _ = write(2, message, messageLength) }
        _exit(ExitStatus.problems)
    }
}

private func crashGuardHandler(_ signal: Int32) {
    CrashGuard.report()
}
