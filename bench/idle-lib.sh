# Sourced by bench/idle-gcdump.sh and bench/idle-heaptrack.sh. start_candor [WRAPPER...]: builds this tree and
# starts Candor in the background as bench/compare.sh does (state in $STATE, cleared first), under WRAPPER (a
# profiler) when given; sets pid (the started process) and lg (the harness's load generator, pointed at it).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN=${XB_RUN:-/tmp/xmpp-bench-run} PORT=${CANDOR_BENCH_PORT:-35322}
start_candor() {
    rm -rf "$STATE" && mkdir -p "$STATE"
    dotnet build "$ROOT/src/Candor" -c Release -o "$RUN/candor-bin" >/dev/null
    CANDOR__ArchiveDefault=never "$@" dotnet "$RUN/candor-bin/candor.dll" serve --data "$STATE/data" --bind 127.0.0.1 \
        --c2s-port "$PORT" --tls-port -1 --http-port -1 --https-port -1 --s2s-port -1 --allow-plaintext \
        --allow-registration --log-level Warning >"$STATE/log" 2>&1 &
    pid=$!
    for _ in $(seq 900); do ss -Htln "sport = :$PORT" | grep -q . && break; sleep 0.3; done
    lg=(dotnet "$RUN/loadgen-bin/loadgen.dll" --host 127.0.0.1 --port "$PORT" --quiet)
}
