# Sourced by the scenario scripts: finds foxbench and raises the open file limit.
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/../.." && pwd)"
FOXBENCH="${FOXBENCH:-$ROOT/.build/release/foxbench}"
if [ ! -x "$FOXBENCH" ]; then
    echo "$(basename "$0"): $FOXBENCH not found; build it: flock /tmp/foxmq-build.lock swift build -c release --product foxbench" >&2
    exit 2
fi
# Many connections need many descriptors: 65536, or the hard limit when that is lower.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# The QoS argument every pub/sub scenario takes first.
need_qos() {
    case "${1:-}" in
        0|1|2) ;;
        *) echo "usage: $(basename "$0") QOS [foxbench options...]   (QOS is 0, 1 or 2)" >&2; exit 2 ;;
    esac
}
