#!/usr/bin/env bash
# Runs every `doppel bench` mode with the documented defaults and keeps
# everything it prints (stdout and stderr). Installs the peers first (bench/install-peers.sh) and builds the
# release binary.
#
# Usage: bench/run-all.sh [output-file]   (default: bench/results-<date>.txt)
# Extra flags for every comparison run may be given in BENCH_FLAGS, e.g.
#   BENCH_FLAGS="--skip-missing" bench/run-all.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${1:-bench/results-$(date -u +%Y-%m-%d).txt}"
flags="${BENCH_FLAGS:-}"

bench/install-peers.sh
cargo build --release -p doppel
doppel="$root/target/release/doppel"

{
    echo "# doppel bench, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# host: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "# peers: victoria-metrics $(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || echo '?'), influxdb $(dpkg-query -W -f='${Version}' influxdb 2>/dev/null || echo '?')"
} | tee "$out"

run() {
    echo | tee -a "$out"
    echo "\$ doppel bench $*" | tee -a "$out"
    # Everything the run prints is kept: its stderr (each step, warnings)
    # and its stdout (the tables). Progress bars draw only on a terminal,
    # so they do not clutter the file.
    "$doppel" bench "$@" 2>&1 | tee -a "$out"
}

# shellcheck disable=SC2086 # BENCH_FLAGS is a list of flags
run ingest $flags
# shellcheck disable=SC2086
run query $flags
run memory --twins 1000000
run memory --twins 1000000 --in-process
run latency

echo | tee -a "$out"
echo "results in $out"
