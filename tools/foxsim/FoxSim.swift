import ArgumentParser
import Foundation
import FoxConsensus
import FoxConsensusSimulation

/// foxsim: seeded soak runs of the consensus simulator, its figures and the per-block costs.
@main
struct FoxSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "foxsim",
        abstract: "Soak runs of the seeded consensus simulator; figures; per-block cost benchmarks.",
        discussion: """
            A failure prints the scenario, the seed and the command that reproduces it exactly; the exit status is 1 if any run failed.

            Examples:
              foxsim --scenario all --nodes 4,7 --seeds 100
              foxsim --scenario partition-2-2,byz-flood --nodes 7 --seed 1000 --seeds 20
              foxsim --figures --seeds 2
              foxsim --bench
            """)

    @Option(help: "Comma-separated scenarios, or all.")
    var scenario = "all"

    @Option(help: "Comma-separated cluster sizes.")
    var nodes = "4,7"

    @Option(help: "Seeds per scenario and size (figures: per case).")
    var seeds: UInt64 = 100

    @Option(help: "First seed.")
    var seed: UInt64 = 1

    @Flag(help: "Real P-256 signatures instead of the simulator's fast MACs.")
    var realCrypto = false

    @Flag(help: "Trace every event and describe each node after each run.")
    var verbose = false

    @Flag(help: "Commit latency in message delays, throughput and fairness inversions.")
    var figures = false

    @Flag(help: "Sign, verify, encode, decode and committer cost per block.")
    var bench = false

    func validate() throws {
        guard seeds >= 1 else { throw ValidationError("--seeds must be at least 1.") }
        guard !(figures && bench) else { throw ValidationError("--figures and --bench are separate runs.") }
        for name in scenarioNames where !Scenario.names.contains(name) {
            throw ValidationError(
                "unknown scenario '\(name)'; known: all, \(Scenario.names.joined(separator: ", ")).")
        }
        guard !nodeCounts.isEmpty, nodeCounts.allSatisfy({ $0 >= 4 }) else {
            throw ValidationError("--nodes takes sizes of 4 or more, e.g. 4,7 (not '\(nodes)').")
        }
    }

    private var scenarioNames: [String] {
        scenario == "all" ? Scenario.names : scenario.split(separator: ",").map(String.init)
    }

    private var nodeCounts: [Int] {
        let parts = nodes.split(separator: ",")
        let counts = parts.compactMap { Int($0) }
        return counts.count == parts.count ? counts : []
    }

    func run() throws {
        if bench {
            Bench.run()
        } else if figures {
            Figures.run(seeds: seeds, firstSeed: seed)
        } else {
            try soak()
        }
    }

    private func soak() throws {
        var failures = 0
        var runs = 0
        var totalEvents = 0
        let clock = ContinuousClock()
        let start = clock.now
        for name in scenarioNames {
            for n in nodeCounts {
                var passed = 0
                for seed in seed..<(seed + seeds) {
                    var s = Scenario.make(name, n: n, seed: seed)
                    s.realCrypto = realCrypto
                    let sim = Simulator(s)
                    if verbose { sim.trace = { print($0) } }
                    let r = sim.run()
                    runs += 1
                    totalEvents += r.events
                    if r.passed {
                        passed += 1
                    } else {
                        failures += 1
                        print("FAIL \(s.description): \(r.violations.map(\.description).joined(separator: "; "))")
                        print("  reproduce: \(r.reproduce)")
                    }
                    if verbose {
                        for line in sim.describeNodes() { print(line) }
                        print(
                            "\(s.description) commits=\(r.commits) applied=\(r.entriesApplied)/\(r.entriesAccepted) events=\(r.events) forced=\(r.forcedEmissions) equiv=\(r.equivocationsSeen) invalid=\(r.invalidBlocks) maxDag=\(r.maxDagBlocks) maxSusp=\(r.maxSuspended)"
                        )
                    }
                }
                print("\(name) n=\(n): \(passed)/\(seeds) passed")
            }
        }
        print("runs=\(runs) failures=\(failures) events=\(totalEvents) wall=\(clock.now - start)")
        if failures > 0 { throw ExitCode(1) }
    }
}
