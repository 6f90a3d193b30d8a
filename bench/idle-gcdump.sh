#!/usr/bin/env bash
# Memory per idle connection: starts Candor (Release build of this tree, started like bench/compare.sh does) and
# holds idle sessions of the shared harness's load generator (STARTTLS with --tls): first W = max(500, N/5) of
# them, the steady baseline (the server has then compiled the login path and grown its thread pool, buffer pools
# and caches), then N more. Prints the RSS per connection between the two (RSS read 15 s after each batch), then
# takes a heap snapshot with dotnet-gcdump and sums, per type, what has at least 0.9 (W + N) instances (the
# per-connection objects), per connection.
#
#   bench/idle-gcdump.sh [N] [--tls]        default N=1000; needs ~/.dotnet/tools/dotnet-gcdump and the
#                                           harness's loadgen (../shared/xmpp-bench/peers.sh build)
set -euo pipefail
N=${1:-1000} TLS=${2:-}
source "$(dirname "${BASH_SOURCE[0]}")/idle-lib.sh"
STATE=$RUN/idle-gcdump
start_candor
trap 'kill $pid ${idle:-} 2>/dev/null || true' EXIT
W=$((N / 5 > 500 ? N / 5 : 500))
"${lg[@]}" --register --users $((W + N)) --connect-rate 2000 --connect-concurrency 32 >"$STATE/register.log" 2>&1
hold() { # FIRST COUNT: idle sessions u<FIRST>.. held for 10 minutes, in the background; waits until all are open
    "${lg[@]}" --idle --first "$1" --users "$2" --connect-rate 300 ${TLS:+--tls} --duration 600 --settle 5 >>"$STATE/idle.log" 2>&1 &
    idle="${idle:-} $!"
    for _ in $(seq 900); do [ "$(ss -Htn state established "sport = :$PORT" | wc -l)" -ge $(($1 - 1 + $2)) ] && break; sleep 1; done
    sleep 15
}
rss() { awk '/VmRSS/{print $2}' /proc/$pid/status; }
hold 1 "$W"
before=$(rss)
hold $((W + 1)) "$N"
after=$(rss)
open=$(ss -Htn state established "sport = :$PORT" | wc -l)
echo "idle sessions: $open; RSS $before KiB with $W (the baseline), $after KiB with $((W + N)): $(( (after - before) * 100 / N / 100 )).$(( (after - before) * 100 / N % 100 )) KiB per connection"
~/.dotnet/tools/dotnet-gcdump collect -p "$pid" -o "$STATE/heap.gcdump" >/dev/null
~/.dotnet/tools/dotnet-gcdump report "$STATE/heap.gcdump" >"$STATE/report.txt"
# report lines: size of each object, count, type [assembly]
/usr/bin/python3 - "$STATE/report.txt" $((W + N)) <<'PY'
import collections, re, sys
n = int(sys.argv[2])
size, count = collections.Counter(), collections.Counter()
for line in open(sys.argv[1]):
    m = re.match(r"\s*([\d,]+)\s+([\d,]+)\s+(.*?)(\s+\(Bytes.*\))?\s+\[.*\]\s*$", line)
    if m:
        each, k = int(m[1].replace(",", "")), int(m[2].replace(",", ""))
        size[m[3]] += each * k
        count[m[3]] += k
rows = sorted(((size[t], count[t], t) for t in size if count[t] >= 0.9 * n), reverse=True)
for b, k, t in rows[:40]:
    print(f"{b / n:8.0f} B per connection {k:7d}  {t}")
print(f"{sum(r[0] for r in rows) / n:8.0f} B per connection in all (types with at least {0.9 * n:.0f} instances)")
PY
