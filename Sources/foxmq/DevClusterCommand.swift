import ArgumentParser
import Foundation
import FoxCluster
import UnixSignals

/// `foxmq dev-cluster`: a local cluster in one command, for development and demos. Keys, the
/// address book and ports are generated once in one folder; each node runs as its own `foxmq
/// run` process with its config directory, store and log in `DIR/node-N`. Ctrl-C stops them
/// all gracefully; running it again restarts the same cluster with its state.
struct DevClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-cluster",
        abstract: "Run a local cluster of N nodes (keys, address book and ports generated; state in one folder).",
        discussion: """
            The first run writes DIR/key_N.pem and DIR/address-book.toml; every run starts one \
            `foxmq run` per node (config directory, store and log in DIR/node-N) and prints how \
            to connect. Anonymous clients are allowed. Ctrl-C stops every node gracefully. Remove \
            DIR to start over.
            """)

    @Argument(help: "The cluster's folder.")
    var directory: String = "foxmq-dev"

    @Option(help: "Nodes (4 tolerates one failed node, 7 two).")
    var nodes: Int = 4

    @Option(help: "The address every node listens on.")
    var host: String = "127.0.0.1"

    @Option(help: "Node N's MQTT port is this plus N.")
    var mqttPort: Int = 1883

    @Option(help: "Node N's cluster port is this plus N.")
    var clusterPort: Int = 19793

    @Option(help: ArgumentHelp("sync or none, as for run.", valueName: "MODE"))
    var durability: RunCommand.Durability = .sync

    func validate() throws {
        guard (1...64).contains(nodes) else { throw ValidationError("--nodes must be 1...64.") }
        guard (1...65535).contains(mqttPort), mqttPort + nodes - 1 <= 65535,
            (1...65535).contains(clusterPort), clusterPort + nodes - 1 <= 65535
        else {
            throw ValidationError("the ports of \(nodes) nodes must fit in 1...65535.")
        }
    }

    func run() async throws {
        let bookPath = AddressBook.path(inDirectory: directory)
        if let book = try AddressBook.load(path: bookPath) {
            guard book.entries.count == nodes else {
                throw ValidationError(
                    "\(directory) holds a cluster of \(book.entries.count) nodes; pass --nodes \(book.entries.count), or remove \(directory) to start over."
                )
            }
        } else {
            let addresses = try (0..<nodes).map { try ClusterAddress(host: host, port: clusterPort + $0) }
            let report = try ClusterSetup.write(addresses: addresses, directory: directory, replace: false)
            say("wrote \(report.bookPath) and \(report.keyPaths.count) keys")
        }
        let book = try AddressBook.load(path: bookPath)!
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        var processes: [Process] = []
        for (position, entry) in book.entries.enumerated() {
            let nodeDirectory = directory + "/node-\(position)"
            try FileManager.default.createDirectory(atPath: nodeDirectory, withIntermediateDirectories: true)
            let nodeBook = AddressBook.path(inDirectory: nodeDirectory)
            try? FileManager.default.removeItem(atPath: nodeBook)
            try FileManager.default.copyItem(atPath: bookPath, toPath: nodeBook)
            let cluster = try ClusterAddress(parsing: entry.address)
            let mqtt =
                "\(cluster.hostText.contains(":") ? "[\(cluster.hostText)]" : cluster.hostText):\(mqttPort + position)"
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = [
                "run", nodeDirectory, "--secret-key-file", directory + "/key_\(position).pem", "--mqtt-addr", mqtt,
                "--cluster-addr", entry.address, "--allow-anonymous-login", "--leader-timeout-millis", "20",
                "--durability", durability.rawValue,
            ]
            let logPath = nodeDirectory + "/foxmq.log"
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            log.seekToEndOfFile()
            process.standardOutput = log
            process.standardError = log
            try process.run()
            processes.append(process)
            say(
                "node \(position): mqtt://\(mqtt)   cluster \(entry.address)   log \(logPath)   pid \(process.processIdentifier)"
            )
        }
        let first = "\(host):\(mqttPort)"
        say(
            """

            \(nodes) nodes starting (they open their MQTT port once a quorum has ordered their start).
            Try:  mosquitto_sub -h \(host) -p \(mqttPort + nodes - 1) -t '#' -v
                  mosquitto_pub -h \(host) -p \(mqttPort) -t hello -m world -q 1
            (\(first) and the others: every subscriber on every node sees the same order.)
            Ctrl-C stops the cluster.
            """)
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let watcher = Task.detached {
            // Reports nodes that end on their own (a start refused, a failed store).
            var reported = Set<Int>()
            while !Task.isCancelled {
                for (position, process) in processes.enumerated()
                where !process.isRunning && !reported.contains(position) {
                    reported.insert(position)
                    say(
                        "node \(position) exited with status \(process.terminationStatus); see \(directory)/node-\(position)/foxmq.log"
                    )
                }
                try? await Task.sleep(nanoseconds: 500_000_000)
            }
        }
        for await _ in signals { break }
        watcher.cancel()
        say("stopping \(nodes) nodes")
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(20)
        while processes.contains(where: \.isRunning) && Date() < deadline {
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        say("stopped")
    }
}

/// A line on standard output, written at once (also when it is a file or a pipe).
private func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
