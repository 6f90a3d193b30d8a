#!/usr/bin/env bash
# One Candor node against a three-node Candor cluster (issue 20 part 4, docs/CLUSTER.md "Cost model"), loopback only.
#
#   bench/cluster.sh [--write] [messaging] [idle] [accounts]     default: messaging idle
#
# Every setup runs on freshly started nodes sharing one private PostgreSQL (initdb under $XB_RUN/cluster-pg, on a
# free port, never the system service; kept between runs with its accounts):
#   1 node         candor serve --postgres, no --cluster-port (no silo at all)
#   3 nodes local  three nodes (--cluster-port, mutual TLS), both users of every pair on the same node
#   3 nodes split  three nodes, the two users of every pair on different nodes: every message crosses nodes
# messaging: XB_TP_USERS (200) users in pairs, as fast as a window of XB_TP_WINDOW (16) allows for XB_TP_DURATION
#   (20) s, then XB_LAT_RATE (2000) msg/s in total for XB_LAT_DURATION (20) s; server CPU is the sum over all nodes.
# idle: three nodes, XB_CLUSTER_IDLE (18000) logins per node at XB_IDLE_RATE (200)/s each, from three load
#   generators at once (one process may hold only 20000 files), held XB_IDLE_HOLD (30) s; RSS per node.
# accounts: only creates the 3 x XB_CLUSTER_IDLE accounts idle needs (kept in the database for later runs).
#
# The load generator is ../shared/xmpp-bench/loadgen, built from a copy in $XB_RUN with two edits (checked below):
# connection i goes to the node its user is placed on (XB_NODE_PORTS, XB_PLACEMENT), and the server CPU it
# samples is the sum over XB_SERVER_PIDS. The table is printed and, with --write, appended to docs/PERFORMANCE.md.
# XB_REUSE_BUILD=1 skips both builds when a previous run left them (a second scenario right after the first).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# ../shared beside the main repository; ../../shared from a worktree under /work/wt.
HARNESS=${XB_HARNESS:-$( [ -d "$ROOT/../shared/xmpp-bench" ] && echo "$ROOT/../shared/xmpp-bench" || echo "$ROOT/../../shared/xmpp-bench")}
export XB_RUN=${XB_RUN:-/tmp/xmpp-bench-run}
STATE=$XB_RUN/cluster
TP_USERS=${XB_TP_USERS:-200} TP_WINDOW=${XB_TP_WINDOW:-16} TP_DURATION=${XB_TP_DURATION:-20}
LAT_RATE=${XB_LAT_RATE:-2000} LAT_DURATION=${XB_LAT_DURATION:-20}
IDLE=${XB_CLUSTER_IDLE:-18000} IDLE_RATE=${XB_IDLE_RATE:-200} IDLE_HOLD=${XB_IDLE_HOLD:-30}

write=0
scenarios=()
for a in "$@"; do
    case "$a" in
        --write) write=1 ;;
        messaging | idle | accounts) scenarios+=("$a") ;;
        *) echo "usage: bench/cluster.sh [--write] [messaging] [idle] [accounts]" >&2; exit 2 ;;
    esac
done
[ ${#scenarios[@]} -gt 0 ] || scenarios=(messaging idle)
mkdir -p "$STATE"
results=$STATE/results-$(date +%Y%m%d-%H%M%S)
mkdir -p "$results"

table=$results/table.txt

# ---- builds (XB_REUSE_BUILD=1: keep those of the previous run) ----
if [ "${XB_REUSE_BUILD:-0}" != 1 ] || [ ! -f "$STATE/candor-bin/candor.dll" ] || [ ! -f "$STATE/loadgen-bin/loadgen.dll" ]; then
    dotnet build "$ROOT/src/Candor" -c Release -o "$STATE/candor-bin" >/dev/null
    lg=$STATE/loadgen-src
    rm -rf "$lg" && cp -r "$HARNESS/loadgen" "$lg" && rm -rf "$lg/bin" "$lg/obj"
    sed -i 's/new IPEndPoint(addr, _o.Port)/new IPEndPoint(addr, Placement.Port(UserIndex, _o.Port))/' "$lg/XmppClient.cs"
    sed -i 's/public static double CpuSeconds(int pid)$/public static double CpuSeconds(int pid) => Placement.Sum(pid, CpuSecondsOf);\n    static double CpuSecondsOf(int pid)/' "$lg/Program.cs"
    grep -q 'Placement.Port' "$lg/XmppClient.cs" && grep -q 'Placement.Sum' "$lg/Program.cs" \
        || { echo "bench/cluster.sh: the shared load generator changed; update the two edits above" >&2; exit 1; }
    cat >"$lg/Placement.cs" <<'EOF'
namespace LoadGen;

/// <summary>bench/cluster.sh: the node each user connects to, and the processes that make up the server.</summary>
static class Placement
{
    static readonly int[] Ports = Parse("XB_NODE_PORTS");
    static readonly int[] Pids = Parse("XB_SERVER_PIDS");
    static readonly bool Split = Environment.GetEnvironmentVariable("XB_PLACEMENT") == "split";

    static int[] Parse(string name) =>
        (Environment.GetEnvironmentVariable(name) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();

    /// <summary>Pairs are u1-u2, u3-u4, ...: "split" puts consecutive users on consecutive nodes, else each pair on one node.</summary>
    public static int Port(int user, int fallback) =>
        Ports.Length == 0 ? fallback : Ports[(Split ? user - 1 : (user - 1) / 2) % Ports.Length];

    public static double Sum(int pid, Func<int, double> of) => Pids.Length == 0 ? of(pid) : Pids.Sum(of);
}
EOF
    dotnet build "$lg" -c Release -o "$STATE/loadgen-bin" >/dev/null
fi
LOADGEN=(dotnet "$STATE/loadgen-bin/loadgen.dll")

# ---- PostgreSQL, private ----
PG=$STATE/cluster-pg
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ ! -f "$PG/data/PG_VERSION" ]; then
    rm -rf "$PG" && mkdir -p "$PG" && echo bench >"$PG/password"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$PG"
    as_pg "$PGBIN/initdb" -D "$PG/data" -U candor --pwfile "$PG/password" --auth-host=scram-sha-256 --auth-local=peer \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync >/dev/null
fi
if ! as_pg "$PGBIN/pg_ctl" -D "$PG/data" status >/dev/null 2>&1; then
    PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$PGBIN/pg_ctl" -D "$PG/data" -l "$PG/log" -w -t 60 -o "-p $PGPORT -k $PG -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=800" start >/dev/null
    echo "$PGPORT" >"$STATE/pg-port"
fi
PGPORT=$(cat "$STATE/pg-port")
export CANDOR__POSTGRES="Host=127.0.0.1;Port=$PGPORT;Username=candor;Password=bench;Database=postgres"
[ -f "$STATE/master.key" ] || head -c 32 /dev/urandom | base64 >"$STATE/master.key"
export CANDOR__MASTERKEY=$(cat "$STATE/master.key") CANDOR__CLUSTERSECRET=$(head -c 32 /dev/urandom | base64)

# ---- nodes ----
PIDS=() PORTS=()
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stop_nodes() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done; done
    PIDS=() PORTS=()
}
trap stop_nodes EXIT
# start_nodes N CLUSTER(0|1): N nodes, one after the other; a cluster's last node must announce links to all others.
start_nodes() {
    local n=$1 cluster=$2 i
    for i in $(seq 1 "$n"); do
        local port; port=$(free_port)
        local data=$STATE/node$i
        rm -rf "$data" && mkdir -p "$data"
        local extra=()
        [ "$cluster" = 1 ] && extra=(--cluster-port "$(free_port)")
        dotnet "$STATE/candor-bin/candor.dll" serve --data "$data" --bind 127.0.0.1 --c2s-port "$port" --tls-port -1 \
            --http-port -1 --https-port -1 --s2s-port -1 --allow-plaintext --allow-registration --log-level Warning \
            "${extra[@]}" >"$data/log" 2>&1 &
        PIDS+=($!) PORTS+=("$port")
        local ready=0
        for _ in $(seq 1 3000); do
            grep -q "Cluster node .*linked to $((i - 1)) other" "$data/log" 2>/dev/null && { ready=1; break; }
            [ "$cluster" = 0 ] && (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && { ready=1; break; }
            kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$data/log" >&2; exit 1; }
            sleep 0.2
        done
        # A node not ready after 10 minutes (a starved machine) would leave its share of the load unmeasured.
        [ $ready = 1 ] || { echo "bench/cluster.sh: node $i not ready after 600 s" >&2; cat "$data/log" >&2; exit 1; }
    done
    sleep 5
}
csv() { local IFS=,; echo "$*"; }
# CPU % (of one core) all nodes use over 10 s with no client: Orleans' membership probes, timers and the rest.
cpu_ticks() { local t=0 pid; for pid in "${PIDS[@]}"; do t=$((t + $(awk '{print $14 + $15}' /proc/"$pid"/stat))); done; echo $t; }
idle_cpu() { local a b; a=$(cpu_ticks); sleep 10; b=$(cpu_ticks); awk -v t=$((b - a)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t * 100 / hz / 10 }'; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(' '.join(str(d.get(k)) for k in sys.argv[2:]))" "$@"; }

# Accounts u1..uN (password pw) in the shared database, created once and kept: `candor user add --from-file`, the
# operator's bulk import (the server's SCRAM iterations, derived on every core, 1000 accounts per transaction).
register() {
    local want=$1 have=0
    [ -f "$STATE/registered" ] && have=$(cat "$STATE/registered")
    [ "$have" -ge "$want" ] && return
    local list=$STATE/accounts.txt started=$SECONDS
    seq $((have + 1)) "$want" | sed 's/^/u/; s/$/:pw/' >"$list"
    # Exit code 3: some existed already (an earlier run stopped before recording its count); they are kept.
    dotnet "$STATE/candor-bin/candor.dll" user add --from-file "$list" --data "$STATE/admin" >"$results/accounts.log" 2>&1 \
        || [ $? = 3 ] || { cat "$results/accounts.log" >&2; exit 1; }
    echo "accounts u$((have + 1))..u$want created in $((SECONDS - started)) s" >>"$table"
    echo "$want" >"$STATE/registered"
}

messaging() {
    register "$TP_USERS"
    printf '%-15s %8s %10s %12s %12s %12s %10s %10s %8s\n' setup "idle CPU" "msg/s" "CPU us/msg" "CPU us/msg" "minus idle" "p50 ms" "p99 ms" lost >>"$table"
    printf '%-15s %8s %10s %12s %12s %12s %10s %10s %8s\n' "" "(%)" "(window)" "(window)" "(${LAT_RATE}/s)" "(${LAT_RATE}/s)" "(${LAT_RATE}/s)" "(${LAT_RATE}/s)" "" >>"$table"
    for setup in "1 node:1:0:pairs" "3 nodes local:3:1:pairs" "3 nodes split:3:1:split"; do
        IFS=: read -r name n cluster placement <<<"$setup"
        start_nodes "$n" "$cluster"
        local tag=${name// /-} idle; idle=$(idle_cpu)
        XB_NODE_PORTS=$(csv "${PORTS[@]}") XB_SERVER_PIDS=$(csv "${PIDS[@]}") XB_PLACEMENT=$placement \
            "${LOADGEN[@]}" --port "${PORTS[0]}" --users "$TP_USERS" --duration "$TP_DURATION" --warmup 3 --rate 0 \
            --window "$TP_WINDOW" --drain 10 --server-pid "${PIDS[0]}" --quiet --json-out "$results/$tag.throughput.json" >/dev/null
        XB_NODE_PORTS=$(csv "${PORTS[@]}") XB_SERVER_PIDS=$(csv "${PIDS[@]}") XB_PLACEMENT=$placement \
            "${LOADGEN[@]}" --port "${PORTS[0]}" --users "$TP_USERS" --duration "$LAT_DURATION" --warmup 3 --rate "$LAT_RATE" \
            --drain 10 --server-pid "${PIDS[0]}" --quiet --json-out "$results/$tag.latency.json" >/dev/null
        read -r rate cpu lost1 <<<"$(json "$results/$tag.throughput.json" delivered_per_s server_cpu_us_per_msg lost)"
        read -r lcpu p50 p99 lost2 <<<"$(json "$results/$tag.latency.json" server_cpu_us_per_msg lat_ms_p50 lat_ms_p99 lost)"
        # The nodes' CPU with no client (idle % of one core = idle x 10,000 us per second) spread over the fixed rate's messages.
        local net; net=$(python3 -c "print(f'{$lcpu - $idle * 10000 / $LAT_RATE:.1f}')")
        printf '%-15s %8s %10s %12s %12s %12s %10s %10s %8s\n' "$name" "$idle" "$rate" "$cpu" "$lcpu" "$net" "$p50" "$p99" "$lost1+$lost2" >>"$table"
        stop_nodes
    done
}

accounts() { register $((3 * IDLE)); }

idle() {
    register $((3 * IDLE))
    start_nodes 3 1
    echo "three nodes, no client: CPU $(idle_cpu)% of one core in all" >>"$table"
    local rss0=() i
    for i in 0 1 2; do rss0+=("$(awk '/VmRSS/{print $2}' /proc/"${PIDS[$i]}"/status)"); done
    local lgs=()
    for i in 0 1 2; do
        "${LOADGEN[@]}" --port "${PORTS[$i]}" --first $((i * IDLE + 1)) --users "$IDLE" --idle --connect-rate "$IDLE_RATE" \
            --connect-concurrency 200 --duration "$IDLE_HOLD" --settle 5 --login-timeout 60 --src-spread 4 \
            --server-pid "${PIDS[$i]}" --quiet --json-out "$results/idle.node$((i + 1)).json" >/dev/null &
        lgs+=($!)
    done
    # Each node's largest RSS while the load generators run: all three hold their connections at the end of the logins.
    local rss1=("${rss0[@]}") running=1
    while [ $running = 1 ]; do
        running=0
        for i in 0 1 2; do kill -0 "${lgs[$i]}" 2>/dev/null && running=1; done
        for i in 0 1 2; do
            local now; now=$(awk '/VmRSS/{print $2}' /proc/"${PIDS[$i]}"/status)
            [ "$now" -gt "${rss1[$i]}" ] && rss1[i]=$now
        done
        sleep 2
    done
    wait "${lgs[@]}" || true
    printf '\n%-8s %12s %14s %12s %12s %10s\n' node connections "RSS before MiB" "RSS max MiB" "KiB/conn" "login p99" >>"$table"
    for i in 0 1 2; do
        read -r conns p99 <<<"$(json "$results/idle.node$((i + 1)).json" connections login_ms_p99)"
        printf '%-8s %12s %14s %12s %12s %10s\n' "node$((i + 1))" "$conns" $((rss0[i] / 1024)) $((rss1[i] / 1024)) \
            "$(( (rss1[i] - rss0[i]) / (conns > 0 ? conns : 1) ))" "$p99 ms" >>"$table"
    done
    echo "(KiB/conn: RSS growth of the node over its own connections; it also holds the replica of the other nodes' $((2 * IDLE)) sessions)" >>"$table"
    stop_nodes
}

for s in "${scenarios[@]}"; do "$s"; done
cat "$table"

if [ "$write" = 1 ]; then
    {
        echo
        echo "### Cluster run of $(date -u +%Y-%m-%d) ($(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1 /proc/loadavg) at the end)"
        echo
        echo "Command: \`$(env | grep -E '^XB_(TP_|LAT_|CLUSTER_IDLE|IDLE_)' | tr '\n' ' ')bench/cluster.sh ${scenarios[*]}\`"
        echo
        echo '```'
        cat "$table"
        echo '```'
    } >>"$ROOT/docs/PERFORMANCE.md"
    echo "appended to docs/PERFORMANCE.md" >&2
fi
