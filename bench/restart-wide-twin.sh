#!/usr/bin/env bash
# Times a restart of `doppel serve` holding one twin with 20,000 signals
# (3 points each), first from the WAL (after SIGKILL), then from segments
# (after a graceful stop). Loopback only; stops by itself.
#
# Usage: bench/restart-wide-twin.sh [path/to/doppel]   (default: target/release/doppel)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
doppel="${1:-$root/target/release/doppel}"
work="$(mktemp -d)"
port=7795
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
flags=(--data "$work/data" --listen "127.0.0.1:$port" --no-auth --no-encryption
       --max-signals-per-twin 100000 --max-series-per-twin 100000
       --max-signals-per-request 100000 --max-series-per-request 100000)

python3 - "$work/wide.lp" <<'PY'
import sys, time
now = int(time.time()) - 3600
with open(sys.argv[1], "w") as out:
    for line in range(20):
        fields = ",".join(f"s{line * 1000 + i}=1" for i in range(1000))
        for t in range(3):
            out.write(f"m,twin=wide {fields} {now + line * 10 + t}\n")
PY

start_server() {
    "$doppel" serve "${flags[@]}" >>"$work/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1200); do
        curl -sf "127.0.0.1:$port/health" >/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
        sleep 0.05
    done
    echo "no answer within 60 s"; exit 1
}

start_server
curl -sf --data-binary @"$work/wide.lp" "127.0.0.1:$port/api/v2/write?precision=s"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true

t0=$(date +%s.%N); start_server; t1=$(date +%s.%N)
echo "restart from the WAL (20,000 signals of one twin): $(echo "$t1 - $t0" | bc) s"
kill "$pid"; wait "$pid" 2>/dev/null || true

t0=$(date +%s.%N); start_server; t1=$(date +%s.%N)
echo "restart from segments after a graceful stop:      $(echo "$t1 - $t0" | bc) s"
kill "$pid"; wait "$pid" 2>/dev/null || true
