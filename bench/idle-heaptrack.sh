#!/usr/bin/env bash
# Native memory per idle connection by allocation site: starts Candor (Release build of this tree, started like
# bench/compare.sh does) under heaptrack, holds N idle sessions of the shared harness's load generator (STARTTLS
# with --tls), then kills the server with SIGKILL, so that heaptrack's "leaked" bytes are what was live at that
# moment, and sums them per allocation site, per connection (OpenSSL's frames below .NET's CryptoNative_* entry).
#
#   bench/idle-heaptrack.sh [N] [--tls]     default N=1000; installs heaptrack from Debian if missing; needs the harness's loadgen
set -euo pipefail
N=${1:-1000} TLS=${2:-}
source "$(dirname "${BASH_SOURCE[0]}")/idle-lib.sh"
command -v heaptrack >/dev/null || { apt-get update -qq && apt-get install -y -qq heaptrack; } >/dev/null
STATE=$RUN/idle-heaptrack
start_candor heaptrack -o "$STATE/heap"
trap 'kill ${idle:-} 2>/dev/null || true' EXIT
# Under heaptrack some registrations time out; the sessions of those users fail to log in and are not counted.
"${lg[@]}" --register --users "$N" --connect-rate 2000 --connect-concurrency 32 >"$STATE/register.log" 2>&1 || true
"${lg[@]}" --idle --users "$N" --connect-rate 100 ${TLS:+--tls} --duration 1800 --settle 5 >"$STATE/idle.log" 2>&1 &
idle=$!
for _ in $(seq 1800); do grep -q READY "$STATE/idle.log" && break; sleep 1; done
sleep 20
open=$(ss -Htn state established "sport = :$PORT" | wc -l)
kill -9 "$(pgrep -P "$pid" -f candor.dll)"
wait "$pid" || true
heaptrack_print -f "$STATE/heap.zst" --print-peaks 0 --print-allocators 0 --print-temporary 0 \
    --flamegraph-cost-type leaked -F "$STATE/leaked.stacks" >/dev/null
echo "idle sessions held: $open"
/usr/bin/python3 - "$STATE/leaked.stacks" "$open" <<'PY'
import collections, sys
n = int(sys.argv[2])
sites = collections.Counter()
for line in open(sys.argv[1]):
    stack, _, cost = line.rstrip("\n").rpartition(" ")
    frames = stack.rstrip(";").split(";")
    entry = next((i for i, f in enumerate(frames) if f.startswith("CryptoNative_")), None)
    if entry is None and any(f.startswith(("BIO_", "BUF_MEM", "SSL_", "EVP_")) for f in frames):
        entry = len(frames) - 3  # a CryptoNative_* entry that tail-calls OpenSSL leaves no frame of its own
    if int(cost) and entry is not None:
        sites[";".join(f.split(" (")[0] for f in frames[entry:entry + 8])] += int(cost)
for site, cost in sites.most_common(25):
    print(f"{cost / n:7.0f} B per connection  {site}")
print(f"{sum(sites.values()) / n:7.0f} B per connection in all, OpenSSL called by .NET")
PY
