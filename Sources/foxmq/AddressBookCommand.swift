import ArgumentParser
import FoxCluster

/// `foxmq address-book from-range|from-list`: the original's commands that create a cluster's
/// files. Wiring only; the formats are `AddressBook` and `NodeKey` in FoxCluster.
struct AddressBookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "address-book",
        abstract: "Create a cluster: one secret key per node and the address book listing them.",
        discussion: """
            Writes DIR/key_0.pem, DIR/key_1.pem... (one per node, in the order given; each node \
            keeps its own and starts with --secret-key-file) and DIR/address-book.toml, which \
            must be identical on every node. Existing files are only replaced with --force.
            """,
        subcommands: [FromRange.self, FromList.self]
    )

    /// `-o/--output-dir` and `-f/--force`, shared by both commands.
    struct Output: ParsableArguments {
        @Option(name: [.short, .long], help: "The configuration directory (created when missing).")
        var outputDir: String = "foxmq.d"

        @Flag(name: [.short, .long], help: "Replace existing key files and address book.")
        var force = false
    }

    struct FromRange: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "from-range",
            abstract: "One node per port from FIRST_PORT to LAST_PORT (inclusive), all at IP.",
            discussion: "Example: foxmq address-book from-range 127.0.0.1 19793 19796 (four nodes)."
        )

        @Argument(help: ArgumentHelp("The nodes' IP address (or host name).", valueName: "IP"))
        var ip: String

        @Argument(help: ArgumentHelp("The first node's cluster port.", valueName: "FIRST_PORT"))
        var firstPort: Int

        @Argument(help: ArgumentHelp("The last node's cluster port.", valueName: "LAST_PORT"))
        var lastPort: Int

        @OptionGroup var output: Output

        func validate() throws {
            for (name, port) in [("FIRST_PORT", firstPort), ("LAST_PORT", lastPort)] where !(1...65535).contains(port) {
                throw ValidationError("\(name) must be a port in 1...65535, got \(port).")
            }
            guard firstPort <= lastPort else {
                throw ValidationError("FIRST_PORT (\(firstPort)) must not be greater than LAST_PORT (\(lastPort)).")
            }
            let count = lastPort - firstPort + 1
            guard count <= AddressBook.memberCountMax else {
                throw ValidationError(
                    "\(firstPort)...\(lastPort) is \(count) nodes; a cluster has at most \(AddressBook.memberCountMax)."
                )
            }
            _ = try addresses()
        }

        func run() throws {
            try writeCluster(try addresses(), output: output)
        }

        /// One address per port (also checked by `validate`, so that the usage shown with the
        /// error is this command's).
        private func addresses() throws -> [ClusterAddress] {
            var addresses: [ClusterAddress] = []
            for port in firstPort...lastPort {
                do {
                    addresses.append(try ClusterAddress(host: ip, port: port))
                } catch {
                    throw ValidationError("Invalid IP '\(ip)': \(error.reason).")
                }
            }
            return addresses
        }
    }

    struct FromList: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "from-list",
            abstract: "One node per address, in the order given.",
            discussion: """
                Example: foxmq address-book from-list 172.18.0.2:19793 172.18.0.3:19793 \
                172.18.0.4:19793 172.18.0.5:19793. IPv6 addresses go in brackets: [::1]:19793.
                """
        )

        @Argument(help: ArgumentHelp("The nodes' cluster addresses.", valueName: "IP:PORT"))
        var addresses: [String]

        @OptionGroup var output: Output

        func validate() throws {
            guard !addresses.isEmpty else { throw ValidationError("Give at least one IP:PORT.") }
            guard addresses.count <= AddressBook.memberCountMax else {
                throw ValidationError(
                    "\(addresses.count) addresses; a cluster has at most \(AddressBook.memberCountMax) nodes.")
            }
            _ = try parsedAddresses()
        }

        func run() throws {
            try writeCluster(try parsedAddresses(), output: output)
        }

        /// The addresses, each given once (also checked by `validate`, so that the usage shown
        /// with the error is this command's).
        private func parsedAddresses() throws -> [ClusterAddress] {
            var parsed: [ClusterAddress] = []
            var positionByAddress: [ClusterAddress: Int] = [:]
            for (position, text) in addresses.enumerated() {
                let address: ClusterAddress
                do {
                    address = try ClusterAddress(parsing: text)
                } catch {
                    throw ValidationError("Invalid address '\(text)': \(error.reason).")
                }
                if let first = positionByAddress[address] {
                    throw ValidationError(
                        "\(address) is given twice (addresses \(first + 1) and \(position + 1)); "
                            + "each node needs its own address.")
                }
                positionByAddress[address] = position
                parsed.append(address)
            }
            return parsed
        }
    }
}

/// Writes the keys and the book (`ClusterSetup`) and says what was written.
private func writeCluster(_ addresses: [ClusterAddress], output: AddressBookCommand.Output) throws {
    let report: ClusterSetup.Report
    do {
        report = try ClusterSetup.write(addresses: addresses, directory: output.outputDir, replace: output.force)
    } catch {
        writeStandardError("foxmq address-book: \(error)\n")
        throw ExitCode(1)
    }
    let count = report.book.entries.count
    print("Wrote \(count == 1 ? "1 node" : "\(count) nodes") to \(report.bookPath):")
    let width = report.keyPaths.map(\.count).max() ?? 0
    for (entry, keyPath) in zip(report.book.entries, report.keyPaths) {
        print("  \(keyPath)\(String(repeating: " ", count: width - keyPath.count))  \(entry.address)")
    }
    print(
        "Copy \(report.bookPath) to every node; give each node only its own key "
            + "(foxmq run --secret-key-file \(report.keyPaths[0]) on node 0, and so on).")
    if !report.staleKeyPaths.isEmpty {
        let one = report.staleKeyPaths.count == 1
        writeStandardError(
            "Note: \(report.staleKeyPaths.joined(separator: ", ")) \(one ? "is" : "are") left from an earlier "
                + "address book and \(one ? "is" : "are") not in this one.\n")
    }
}
