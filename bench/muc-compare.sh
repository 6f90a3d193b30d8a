#!/usr/bin/env bash
# Group chat fan-out: Candor next to Prosody's and ejabberd's MUC, one room of 100 and one of 1000 occupants, in one run.
#
#   bench/muc-compare.sh [--write] [candor] [prosody] [ejabberd]      default: all three
#
# Each server runs privately on loopback (Prosody 16222, ejabberd 26222, Candor $MB_CANDOR_PORT or 36222; state in $MB_RUN,
# default /tmp/muc-bench-run) with its MUC at conference.localhost, no room archive (the peers keep none by
# default; Candor with MucArchiveByDefault=false) and plain-text c2s with SASL PLAIN, started the way
# ../shared/xmpp-bench/peers.sh starts the peers, with a MUC component added. Before each room size a server is
# restarted. bench/MucLoad (the harness's XMPP client with rooms) logs N users in, they enter one room (50 at a time,
# each batch once the previous is in; up to MB_ENTER_TIMEOUT s, as N entries cost N² presences), MB_SENDERS
# of them send groupchat messages at MB_RATE_<N> messages/s in total for MB_WARMUP s (not measured: steady state,
# after .NET's tiered JIT has compiled the hot paths), then for MB_DURATION s, and every occupant counts
# what it gets (MB_RATE_<N> defaults to 5000/N: 5000 deliveries/s). The figure that survives a shared machine is
# the server's CPU time per delivered message (utime+stime of the server process); delivered/s is paced by the
# load; "lost" is what was not delivered 60 s after sending stopped (on a busy machine a single-threaded server
# starved of CPU falls behind: its unread input shows in `ss` as Recv-Q), "errors" what the server refused.
# MB_WINDOW=K measures capacity instead: full load, each sender keeping K messages in flight (the next goes out when
# the room reflects one of its own back to it); delivered/s is then what the server sustains, next to its CPU time.
# --write appends the table to docs/PERFORMANCE.md with the command.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${XB_HARNESS:-$ROOT/../shared/xmpp-bench}
RUN=${MB_RUN:-/tmp/muc-bench-run}
SIZES=${MB_SIZES:-100 1000}
DURATION=${MB_DURATION:-20}
WARMUP=${MB_WARMUP:-10}
ENTER_TIMEOUT=${MB_ENTER_TIMEOUT:-1200}
SENDERS=${MB_SENDERS:-10}
WINDOW=${MB_WINDOW:-0}
P_PORT=16222 E_PORT=26222 E_DIST=26299 C_PORT=${MB_CANDOR_PORT:-36222}

write=0
targets=()
for a in "$@"; do
    case "$a" in
        --write) write=1 ;;
        candor | prosody | ejabberd) targets+=("$a") ;;
        *) echo "usage: bench/muc-compare.sh [--write] [candor] [prosody] [ejabberd]" >&2; exit 2 ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(candor prosody ejabberd)
rate_for() { local v="MB_RATE_$1"; echo "${!v:-$((5000 / $1))}"; } # 5000 deliveries/s by default
load_for() { if [ "$WINDOW" -gt 0 ]; then echo "--window $WINDOW"; else echo "--rate $(rate_for "$1")"; fi; }
say() { echo "muc-compare: $*" >&2; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
wait_port() { for _ in $(seq 600); do ss -Htln "sport = :$1" | grep -q . && return 0; sleep 0.1; done; return 1; }

mkdir -p "$RUN"
[ -d "$HARNESS/loadgen" ] || { say "no xmpp-bench harness at $HARNESS (set XB_HARNESS)"; exit 1; }
command -v prosody >/dev/null && command -v ejabberdctl >/dev/null || "$HARNESS/peers.sh" install
[ -s "$RUN/bench.pem" ] || openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=localhost \
    -keyout "$RUN/bench.key" -out "$RUN/bench.crt" >/dev/null 2>&1 && cat "$RUN/bench.crt" "$RUN/bench.key" >"$RUN/bench.pem"
dotnet build "$ROOT/bench/MucLoad" -c Release -p:XbHarness="$HARNESS" -o "$RUN/mucload-bin" >"$RUN/mucload-build.log" 2>&1 \
    || { cat "$RUN/mucload-build.log" >&2; exit 1; }
dotnet build "$ROOT/src/Candor" -c Release -o "$RUN/candor-bin" >"$RUN/candor-build.log" 2>&1 \
    || { cat "$RUN/candor-build.log" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---- Prosody: peers.sh's settings, plus the muc component
prosody_start() {
    local d=$RUN/prosody
    mkdir -p "$d/data" "$d/cert"
    cp "$RUN/bench.crt" "$RUN/bench.key" "$d/cert/"
    cat >"$d/prosody.cfg.lua" <<EOF
pidfile = "$d/prosody.pid"
data_path = "$d/data"
log = { warn = "$d/prosody.log" }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $P_PORT }
network_settings = { tcp_backlog = 1024; nagle = false }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "register"; "posix" }
modules_disabled = { "s2s"; "s2s_auth_certs"; "offline" }
allow_registration = true
registration_allowlist = { "127.0.0.0/8", "::1" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
certificates = "$d/cert"
ssl = { certificate = "$d/cert/bench.crt"; key = "$d/cert/bench.key" }
VirtualHost "localhost"
Component "conference.localhost" "muc"
    muc_room_locking = false
    max_history_messages = 20
EOF
    chown -R prosody:prosody "$d"
    (cd "$d" && exec setsid setpriv --reuid=prosody --regid=prosody --init-groups \
        prosody --config "$d/prosody.cfg.lua" -F </dev/null >>"$d/stdout.log" 2>&1) &
    wait_port $P_PORT || { tail "$d/prosody.log" "$d/stdout.log" >&2; return 1; }
    for _ in $(seq 50); do [ -s "$d/prosody.pid" ] && break; sleep 0.1; done
    tr -dc 0-9 <"$d/prosody.pid"
}
prosody_stop() {
    local pid; pid=$(tr -dc 0-9 <"$RUN/prosody/prosody.pid" 2>/dev/null || true)
    if alive "$pid"; then kill "$pid"; while alive "$pid"; do sleep 0.1; done; fi
    rm -f "$RUN/prosody/prosody.pid"
}

# ---- ejabberd: peers.sh's settings, plus mod_muc (room and presence limits above 1000 occupants)
ejctl() {
    local d=$RUN/ejabberd
    setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME="$d" ejabberdctl --config-dir "$d/conf" \
        --config "$d/conf/ejabberd.yml" --ctl-config "$d/conf/ejabberdctl.cfg" --logs "$d/logs" --spool "$d/spool" "$@"
}
ejabberd_start() {
    local d=$RUN/ejabberd
    mkdir -p "$d/conf" "$d/spool" "$d/logs"
    cp "$RUN/bench.pem" "$d/conf/bench.pem"
    echo '{lookup,["file","native"]}.' >"$d/conf/inetrc"
    cat >"$d/conf/ejabberd.yml" <<EOF
hosts:
  - "localhost"
loglevel: warning
certfiles:
  - "$d/conf/bench.pem"
listen:
  -
    port: $E_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    backlog: 1024
    shaper: c2s_shaper
    access: c2s
    starttls: true
    starttls_required: false
auth_method: internal
auth_password_format: plain
registration_timeout: infinity
acme:
  auto: false
acl:
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  c2s:
    allow: all
  register:
    allow: all
  trusted_network:
    allow: loopback
shaper_rules:
  max_user_sessions: 10
  c2s_shaper: none
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_register:
    access: register
    ip_access: trusted_network
  mod_muc:
    host: "conference.localhost"
    access_create: all
    max_users: 5000
    max_users_presence: 5000
    history_size: 20
    default_room_options:
      max_users: 5000
EOF
    cat >"$d/conf/ejabberdctl.cfg" <<EOF
ERLANG_NODE=mucbench@localhost
ERL_DIST_PORT=$E_DIST
INET_DIST_INTERFACE=127.0.0.1
ERL_OPTIONS="-setcookie mucbench_cookie -env ERL_CRASH_DUMP_BYTES 0"
ERL_MAX_PORTS=32000
ERL_PROCESSES=1000000
EJABBERD_PID_PATH=$d/ejabberd.pid
EJABBERD_BYPASS_WARNINGS=true
EOF
    chown -R ejabberd:ejabberd "$d"
    (cd "$d" && ejctl start </dev/null >>"$d/logs/ctl.log" 2>&1) || true
    wait_port $E_PORT || { tail "$d/logs/"*.log >&2; return 1; }
    for _ in $(seq 100); do [ -s "$d/ejabberd.pid" ] && break; sleep 0.1; done
    tr -dc 0-9 <"$d/ejabberd.pid"
}
ejabberd_stop() {
    local pid; pid=$(tr -dc 0-9 <"$RUN/ejabberd/ejabberd.pid" 2>/dev/null || true)
    alive "$pid" || return 0
    (ejctl stop >/dev/null 2>&1 &)
    for _ in $(seq 300); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill "$pid"; while alive "$pid"; do sleep 0.1; done; fi
    rm -f "$RUN/ejabberd/ejabberd.pid"
}

# ---- Candor: the Release build, registration from loopback, no room archive (like the peers)
candor_start() {
    local d=$RUN/candor
    mkdir -p "$d"
    CANDOR__MucArchiveByDefault=false setsid dotnet "$RUN/candor-bin/candor.dll" serve --data "$d/data" --bind 127.0.0.1 \
        --c2s-port $C_PORT --tls-port -1 --http-port -1 --https-port -1 --s2s-port -1 \
        --allow-plaintext --allow-registration --log-level Warning >"$d/log" 2>&1 &
    echo $! >"$d/pid"
    wait_port $C_PORT || { tail "$d/log" >&2; return 1; }
    cat "$d/pid"
}
candor_stop() {
    local pid; pid=$(cat "$RUN/candor/pid" 2>/dev/null || true)
    if alive "$pid"; then kill "$pid"; while alive "$pid"; do sleep 0.1; done; fi
    rm -f "$RUN/candor/pid"
}
port_of() { case $1 in prosody) echo $P_PORT ;; ejabberd) echo $E_PORT ;; candor) echo $C_PORT ;; esac; }

out="$RUN/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
for t in "${targets[@]}"; do
    "${t}_stop" 2>/dev/null || true
    for n in $SIZES; do
        pid=$("${t}_start")
        say "$t (pid $pid): $n occupants"
        sleep 3
        reg=""; [ -f "$RUN/$t.registered-$n" ] || reg=--register
        timeout $((ENTER_TIMEOUT + 600)) dotnet "$RUN/mucload-bin/mucload.dll" --port "$(port_of "$t")" --users "$n" --senders "$SENDERS" \
            $(load_for "$n") --duration "$DURATION" --warmup "$WARMUP" --enter-timeout "$ENTER_TIMEOUT" --settle 3 --drain 60 --server-pid "$pid" --label "$t" \
            --json-out "$out/$t.$n.json" $reg 2>"$out/$t.$n.log" | tail -n 2 | head -n 1 || true
        [ -z "$reg" ] || touch "$RUN/$t.registered-$n"
        "${t}_stop"
    done
done

table=$(
    printf '| server | occupants (entered) | msgs/s in (or window) | delivered/s | lost | errors | server CPU µs per delivered message | server RSS MiB |\n'
    printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
    for n in $SIZES; do
        for t in "${targets[@]}"; do
            f="$out/$t.$n.json"
            [ -s "$f" ] || { printf '| %s | %s | failed (see %s) |\n' "$t" "$n" "$out/$t.$n.log"; continue; }
            python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("| %s | %d (%d) | %s | %d | %d | %d | %.2f | %.0f |" % (r["label"], r["occupants"], r["entered"], r["rate"] or "window %d" % r["window"], r["delivered_per_second"], r["lost"], r["errors"], r["server_cpu_us_per_delivered"], r["server_rss_kib"]/1024))' "$f" 2>/dev/null \
                || printf '| %s | %s | incomplete (see %s) |\n' "$t" "$n" "$out/$t.$n.log"
        done
    done
)
echo "$table" | tee "$out/table.md"
if [ "$write" = 1 ]; then
    {
        echo
        echo "### MUC fan-out, run of $(date -u +%Y-%m-%d) ($(nproc) cores, machine shared, indicative)"
        echo
        echo "Command: \`bench/muc-compare.sh ${targets[*]}\` (MB_DURATION=$DURATION, MB_WARMUP=$WARMUP, MB_SENDERS=$SENDERS, MB_WINDOW=$WINDOW, sizes $SIZES)"
        echo
        echo "$table"
    } >>"$ROOT/docs/PERFORMANCE.md"
fi
