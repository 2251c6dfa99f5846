import Foundation
import FoxConsensus
import FoxConsensusSimulation

enum Figures {
    static func pct(_ xs: [UInt64], _ p: Double) -> UInt64 {
        guard !xs.isEmpty else { return 0 }
        let s = xs.sorted()
        return s[min(s.count - 1, Int(Double(s.count - 1) * p))]
    }
    static func md(_ v: UInt64, _ m: UInt64) -> String { String(format: "%.2f", Double(v) / Double(m)) }

    static func run(seeds: UInt64, firstSeed: UInt64) {
        for n in [4, 7] {
            for (label, crashed, fair) in [
                ("all honest, fair", 0, true), ("all honest, plain", 0, false),
                ("f crashed, fair", (n - 1) / 3, true), ("f crashed, plain", (n - 1) / 3, false),
            ] {
                var st = SimStats()
                var entries = 0, secs = 0.0, inv = 0, pairs = 0
                for seed in firstSeed..<(firstSeed + seeds) {
                    var s = Scenario.make("baseline", n: n, seed: seed)
                    s.params.fairMode = fair
                    s.link.tailChance = 0
                    s.link.jitter = 2_000_000
                    s.diskLatency = (100_000, 200_000)
                    s.clockOffsets = Array(repeating: 0, count: n)
                    for v in 0..<crashed { s.faults.append((0, .crash(UInt16(n - 1 - v)))) }
                    let r = Simulator(s).run()
                    if !r.passed { print("FAIL \(s.description): \(r.violations)") }
                    st.leaderEmission += r.stats.leaderEmission
                    st.nonLeaderEmission += r.stats.nonLeaderEmission
                    st.leaderCommit += r.stats.leaderCommit
                    st.meanDelay = r.stats.meanDelay
                    entries += r.entriesApplied
                    secs += Double(s.workloadEnd) / 1e9
                    inv += r.stats.inversions; pairs += r.stats.eligiblePairs
                }
                let m = st.meanDelay
                let a: String =
                    "leader commit md p50=" + md(pct(st.leaderCommit, 0.5), m) + " p99="
                    + md(pct(st.leaderCommit, 0.99), m)
                let b: String =
                    "; leader-block emission p50=" + md(pct(st.leaderEmission, 0.5), m) + " p99="
                    + md(pct(st.leaderEmission, 0.99), m)
                let c: String =
                    "; non-leader emission p50=" + md(pct(st.nonLeaderEmission, 0.5), m) + " p99="
                    + md(pct(st.nonLeaderEmission, 0.99), m)
                let rate = Int(Double(entries) / secs)
                print("n=\(n) \(label): " + a + b + c + "; entries/s=\(rate); inversions=\(inv)/\(pairs)")
            }
            // Fairness with one Byzantine timestamp outlier.
            var inv = 0, pairs = 0
            for seed in firstSeed..<(firstSeed + seeds) {
                var s = Scenario.make("baseline", n: n, seed: seed)
                s.byzantine = [0: .timestampOutlier]
                s.clockOffsets[0] = seed % 2 == 0 ? 3_600_000_000_000 : -1_000_000_000
                let r = Simulator(s).run()
                if !r.passed { print("FAIL \(s.description): \(r.violations)") }
                inv += r.stats.inversions; pairs += r.stats.eligiblePairs
            }
            print("n=\(n) one Byzantine timestamp outlier: inversions=\(inv)/\(pairs)")
        }
    }
}
