import Foundation
import FoxConsensus
import FoxConsensusSimulation

// foxsim: seeded soak runs of the consensus simulator, and the figures.
//   foxsim --scenario all --nodes 4 --seeds 1000 [--seed 1] [--real-crypto] [--verbose]
//   foxsim --figures [--seeds 20]
//   foxsim --bench
let args = Array(CommandLine.arguments.dropFirst())
func value(_ name: String) -> String? {
    let args = Array(CommandLine.arguments.dropFirst())
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
let flag = { (name: String) in args.contains(name) }
let scenarioArg = value("--scenario") ?? "all"
let nodesArg = value("--nodes").map { $0.split(separator: ",").compactMap { Int($0) } } ?? [4, 7]
let seeds = UInt64(value("--seeds") ?? "100") ?? 100
let firstSeed = UInt64(value("--seed") ?? "1") ?? 1

if flag("--bench") {
    Bench.run()
} else if flag("--figures") {
    Figures.run(seeds: seeds, firstSeed: firstSeed)
} else {
    let names = scenarioArg == "all" ? Scenario.names : scenarioArg.split(separator: ",").map(String.init)
    var failures = 0, runs = 0
    var totalEvents = 0
    let clock = ContinuousClock()
    let start = clock.now
    for name in names {
        for n in nodesArg {
            var passed = 0
            for seed in firstSeed..<(firstSeed + seeds) {
                var s = Scenario.make(name, n: n, seed: seed)
                s.realCrypto = flag("--real-crypto")
                let sim = Simulator(s)
                if flag("--verbose") { sim.trace = { print($0) } }
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
                if flag("--verbose") {
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
    if failures > 0 { exit(1) }
}
