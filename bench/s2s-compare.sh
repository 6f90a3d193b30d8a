#!/usr/bin/env bash
# Federation cost: chat messages from accounts on one server to accounts on another, over s2s (STARTTLS, dialback
# with self-signed certificates), Candor<->Candor next to Prosody<->Prosody, in one run.
#
#   bench/s2s-compare.sh [candor] [prosody] [ejabberd]      default: all three
#
# Each pair runs privately on loopback, state in $S2B_RUN (default /tmp/s2s-bench-run): Candor on 127.0.0.1 (c2s
# 17222/17223, s2s 17269/17270, found by S2sRoutes); Prosody on 127.0.0.2 and 127.0.0.3, ejabberd on 127.0.0.4 and
# 127.0.0.5 (c2s 15222, s2s 5269 on each address), each finding the other by an SRV record that bench/fake_dns.py
# answers on 127.0.0.1:15353 (Prosody through libunbound, the target's address from a hosts file; ejabberd through
# an Erlang inetrc, the target an address). bench/s2s_load.py logs S2B_USERS senders in on
# the first server and as many receivers on the second, and sends S2B_MESSAGES messages per sender at S2B_RATE
# messages/s in total. None of the three archives the messages (the peers keep no archive by default; Candor runs
# with ArchiveDefault=never), so the figures are routing, TLS and federation. The figure that survives a shared
# machine is CPU time per delivered message (utime+stime of both server processes), printed per server and for both.
#
# Then, on the same servers, a throughput run ("RESULT NAME-throughput"): S2B_TP_PAIRS (16) sender/receiver pairs, each
# sender on the first server with at most S2B_TP_WINDOW (16) messages not yet delivered to its receiver on the second,
# for S2B_TP_DURATION (20) s, the first 3 s left out; delivered msg/s, lost, duplicates, and the CPU of both servers per
# message delivered in the measured window. Python caps itself at a few thousand messages/s, so this load comes from
# the shared C# load generator (../shared/xmpp-bench/loadgen), built from a copy in $S2B_RUN with edits checked below:
# user uI connects to the first server when I is odd and to the second when even (host, port, domain each), only the
# first server's users send (pairs u1->u2, u3->u4, ...), and the server CPU it samples is the sum over both processes.
# loadgen_cpu_pct says whether the generator itself was the limit. S2B_THROUGHPUT=0 leaves the throughput run out.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN=${S2B_RUN:-/tmp/s2s-bench-run}
USERS=${S2B_USERS:-4}
MESSAGES=${S2B_MESSAGES:-5000}
RATE=${S2B_RATE:-1000}
DNS_PORT=15353
TP_PAIRS=${S2B_TP_PAIRS:-16} TP_WINDOW=${S2B_TP_WINDOW:-16} TP_DURATION=${S2B_TP_DURATION:-20} THROUGHPUT=${S2B_THROUGHPUT:-1}
# Accounts u1..uN on each server: the paced load's senders and receivers, and the throughput run's pairs.
ACCOUNTS=$(( USERS > 2 * TP_PAIRS ? USERS : 2 * TP_PAIRS ))
# ../shared beside the main repository; ../../shared from a worktree under /work/wt.
HARNESS=${XB_HARNESS:-$( [ -d "$ROOT/../shared/xmpp-bench" ] && echo "$ROOT/../shared/xmpp-bench" || echo "$ROOT/../../shared/xmpp-bench")}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(candor prosody ejabberd)
say() { echo "s2s-compare: $*" >&2; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
wait_port() { for _ in $(seq 600); do ss -Htln "src $1 and sport = :$2" | grep -q . && return 0; sleep 0.1; done; return 1; }
stop() { local pid; for pid in "$@"; do if alive "$pid"; then kill "$pid"; while alive "$pid"; do sleep 0.1; done; fi; done; }
# fake_dns NAME=TARGET:PORT...: the resolver both peers of a pair ask; its pid in $dns_pid.
fake_dns() { /usr/bin/python3 "$ROOT/bench/fake_dns.py" $DNS_PORT "$@" & dns_pid=$!; sleep 0.5; }
load() { /usr/bin/python3 "$ROOT/bench/s2s_load.py" "$@" --users "$USERS" --messages "$MESSAGES" --rate "$RATE"; }
mkdir -p "$RUN"

build_loadgen() {
    local lg=$RUN/loadgen-src
    rm -rf "$lg" && cp -r "$HARNESS/loadgen" "$lg" && rm -rf "$lg/bin" "$lg/obj"
    sed -i 's/await Resolve(_o.Host)/await Resolve(S2sPlacement.Host(UserIndex, _o.Host))/' "$lg/XmppClient.cs"
    sed -i 's/new IPEndPoint(addr, _o.Port)/new IPEndPoint(addr, S2sPlacement.Port(UserIndex, _o.Port))/' "$lg/XmppClient.cs"
    sed -i "s/stream:stream to='{_o.Domain}'/stream:stream to='{S2sPlacement.Domain(UserIndex, _o.Domain)}'/" "$lg/XmppClient.cs"
    sed -i 's/TargetHost = _o.Domain,/TargetHost = S2sPlacement.Domain(UserIndex, _o.Domain),/' "$lg/XmppClient.cs"
    sed -i 's/^\( *\)var s = new SenderState { C = c,/\1if (!S2sPlacement.Sends(c.UserIndex)) continue;\n&/' "$lg/Program.cs"
    sed -i 's/public static double CpuSeconds(int pid)$/public static double CpuSeconds(int pid) => S2sPlacement.Sum(pid, CpuSecondsOf);\n    static double CpuSecondsOf(int pid)/' "$lg/Program.cs"
    [ "$(grep -c 'S2sPlacement\.' "$lg/XmppClient.cs")" = 4 ] && grep -q 'S2sPlacement.Sends' "$lg/Program.cs" \
        && grep -q 'S2sPlacement.Sum' "$lg/Program.cs" \
        || { say "the shared load generator changed; update the edits in build_loadgen"; return 1; }
    cat >"$lg/S2sPlacement.cs" <<'CS'
namespace LoadGen;

/// <summary>bench/s2s-compare.sh: odd users on the first server, even users on the second; the first server's send.</summary>
static class S2sPlacement
{
    static readonly string[] Hosts = Parse("S2B_HOSTS"), Domains = Parse("S2B_DOMAINS");
    static readonly int[] Ports = Parse("S2B_PORTS").Select(int.Parse).ToArray();
    static readonly int[] Pids = Parse("S2B_PIDS").Select(int.Parse).ToArray();

    static string[] Parse(string name) =>
        (Environment.GetEnvironmentVariable(name) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries);

    static int Side(int user) => (user - 1) % 2;
    public static string Host(int user, string fallback) => Hosts.Length == 2 ? Hosts[Side(user)] : fallback;
    public static int Port(int user, int fallback) => Ports.Length == 2 ? Ports[Side(user)] : fallback;
    public static string Domain(int user, string fallback) => Domains.Length == 2 ? Domains[Side(user)] : fallback;
    public static bool Sends(int user) => Side(user) == 0;
    public static double Sum(int pid, Func<int, double> of) => Pids.Length == 0 ? of(pid) : Pids.Sum(of);
}
CS
    dotnet build "$lg" -c Release -o "$RUN/loadgen-bin" >"$RUN/loadgen-build.log" 2>&1 || { cat "$RUN/loadgen-build.log" >&2; return 1; }
}

# throughput NAME HOST_A PORT_A DOMAIN_A HOST_B PORT_B DOMAIN_B PID_A PID_B: the windowed run, one RESULT line.
throughput() {
    [ "$THROUGHPUT" = 1 ] || return 0
    local name=$1 json=$RUN/$1-throughput.json
    rm -f "$json"
    S2B_HOSTS=$2,$5 S2B_PORTS=$3,$6 S2B_DOMAINS=$4,$7 S2B_PIDS=$8,$9 dotnet "$RUN/loadgen-bin/loadgen.dll" --tls \
        --users $((2 * TP_PAIRS)) --pattern pairs --window "$TP_WINDOW" --duration "$TP_DURATION" --warmup 3 --drain 10 \
        --server-pid "$8" --label "$name" --json-out "$json" --quiet >"$RUN/$name-throughput.log" 2>&1 || true
    [ -s "$json" ] || { say "$name throughput run failed:"; cat "$RUN/$name-throughput.log" >&2; return 0; }
    /usr/bin/python3 - "$json" "$name" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"RESULT {sys.argv[2]}-throughput pairs={d['senders']} window={d['window']} sent={d['sent']} delivered={d['delivered']} "
      f"lost={d['lost']} duplicates={d['duplicates']} bounced={d['bounced']} stalled={d['stalled_senders']} "
      f"delivered_per_s={d['delivered_per_s']} cpu_both_us_per_msg={d['server_cpu_us_per_msg']} "
      f"servers_cpu_pct={d['server_cpu_pct']} loadgen_cpu_pct={d['loadgen_cpu_pct']} "
      f"lat_ms_p50={d['lat_ms_p50']} lat_ms_p99={d['lat_ms_p99']}", flush=True)
PY
}
if [ "$THROUGHPUT" = 1 ]; then build_loadgen; fi

candor_pair() {
    dotnet build "$ROOT/src/Candor" -c Release -o "$RUN/candor-bin" >"$RUN/candor-build.log" 2>&1 \
        || { cat "$RUN/candor-build.log" >&2; return 1; }
    local pids=() name c2s s2s other
    for name in ca cb; do
        rm -rf "${RUN:?}/$name"; mkdir -p "$RUN/$name"
        for i in $(seq "$ACCOUNTS"); do
            dotnet "$RUN/candor-bin/candor.dll" user add "u$i@$name.bench" --password pw --data "$RUN/$name/data" --domain "$name.bench" >/dev/null
        done
    done
    for name in ca cb; do
        if [ $name = ca ]; then c2s=17222 s2s=17269 other="cb.bench=127.0.0.1:17270"; else c2s=17223 s2s=17270 other="ca.bench=127.0.0.1:17269"; fi
        CANDOR__S2sRoutes=$other CANDOR__ArchiveDefault=never dotnet "$RUN/candor-bin/candor.dll" serve --data "$RUN/$name/data" --domain "$name.bench" \
            --bind 127.0.0.1 --c2s-port $c2s --tls-port -1 --http-port -1 --https-port -1 --s2s-port $s2s \
            --log-level Warning >"$RUN/$name/log" 2>&1 &
        pids+=($!)
        wait_port 127.0.0.1 $c2s || { cat "$RUN/$name/log" >&2; stop "${pids[@]}"; return 1; }
    done
    load 17222 ca.bench 17223 cb.bench "${pids[0]}" "${pids[1]}" | sed 's/^RESULT/RESULT candor/' || true
    throughput candor 127.0.0.1 17222 ca.bench 127.0.0.1 17223 cb.bench "${pids[0]}" "${pids[1]}"
    stop "${pids[@]}"
}

prosody_pair() {
    [ -s "$RUN/bench.crt" ] || openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=bench \
        -keyout "$RUN/bench.key" -out "$RUN/bench.crt" >/dev/null 2>&1
    printf '127.0.0.2 pa-host.bench\n127.0.0.3 pb-host.bench\n' >"$RUN/hosts"
    fake_dns _xmpp-server._tcp.pa.bench=pa-host.bench:5269 _xmpp-server._tcp.pb.bench=pb-host.bench:5269
    local pids=() name address
    for name in pa pb; do
        address=127.0.0.2; [ $name = pb ] && address=127.0.0.3
        local d=$RUN/$name
        rm -rf "$d"; mkdir -p "$d/data"
        cp "$RUN/bench.crt" "$RUN/bench.key" "$RUN/hosts" "$d/"
        cat >"$d/prosody.cfg.lua" <<EOF
pidfile = "$d/prosody.pid"
data_path = "$d/data"
log = { ${S2B_PROSODY_LOG:-warn} = "$d/prosody.log" }
interfaces = { "$address" }
local_interfaces = { "$address" }
c2s_ports = { 15222 }
c2s_direct_tls_ports = { }
s2s_ports = { 5269 }
s2s_direct_tls_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
network_settings = { nagle = false }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "posix"; "dialback" }
modules_disabled = { "offline" }
s2s_secure_auth = false
s2s_require_encryption = true
unbound = { resolvconf = false; hoststxt = "$d/hosts"; forward = "127.0.0.1@$DNS_PORT" }
c2s_require_encryption = true
authentication = "internal_plain"
storage = "internal"
certificates = "$d"
ssl = { certificate = "$d/bench.crt"; key = "$d/bench.key" }
VirtualHost "$name.bench"
EOF
        chown -R prosody:prosody "$d"
        for i in $(seq "$ACCOUNTS"); do
            setpriv --reuid=prosody --regid=prosody --init-groups prosodyctl --config "$d/prosody.cfg.lua" register "u$i" "$name.bench" pw
        done
        (cd "$d" && exec setsid setpriv --reuid=prosody --regid=prosody --init-groups \
            prosody --config "$d/prosody.cfg.lua" -F </dev/null >>"$d/stdout.log" 2>&1) &
        wait_port $address 15222 || { tail "$d/prosody.log" "$d/stdout.log" >&2; return 1; }
        for _ in $(seq 50); do [ -s "$d/prosody.pid" ] && break; sleep 0.1; done
        pids+=("$(tr -dc 0-9 <"$d/prosody.pid")")
    done
    load 15222 pa.bench 15222 pb.bench "${pids[0]}" "${pids[1]}" --host-a 127.0.0.2 --host-b 127.0.0.3 \
        | sed 's/^RESULT/RESULT prosody/' || true
    throughput prosody 127.0.0.2 15222 pa.bench 127.0.0.3 15222 pb.bench "${pids[0]}" "${pids[1]}"
    stop "${pids[@]}" "$dns_pid"
}

# ejctl DIR ARGS...: ejabberdctl for the instance in DIR, as the ejabberd user.
ejctl() {
    local d=$1; shift
    setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME="$d" ejabberdctl --config-dir "$d/conf" \
        --config "$d/conf/ejabberd.yml" --ctl-config "$d/conf/ejabberdctl.cfg" --logs "$d/logs" --spool "$d/spool" "$@"
}

ejabberd_pair() {
    [ -s "$RUN/bench.crt" ] || openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=bench \
        -keyout "$RUN/bench.key" -out "$RUN/bench.crt" >/dev/null 2>&1
    fake_dns _xmpp-server._tcp.ea.bench=127.0.0.4:5269 _xmpp-server._tcp.eb.bench=127.0.0.5:5269
    local pids=() name address dist
    for name in ea eb; do
        address=127.0.0.4 dist=35299; [ $name = eb ] && address=127.0.0.5 dist=35298
        local d=$RUN/$name
        rm -rf "$d"; mkdir -p "$d/conf" "$d/spool" "$d/logs"
        cat "$RUN/bench.crt" "$RUN/bench.key" >"$d/conf/bench.pem"
        printf '{lookup,[file,dns]}.\n{resolv_conf,""}.\n{nameserver,{127,0,0,1},%s}.\n' $DNS_PORT >"$d/conf/inetrc"
        cat >"$d/conf/ejabberd.yml" <<EOF
hosts:
  - "$name.bench"
loglevel: warning
certfiles:
  - "$d/conf/bench.pem"
listen:
  -
    port: 15222
    ip: "$address"
    module: ejabberd_c2s
    starttls_required: true
  -
    port: 5269
    ip: "$address"
    module: ejabberd_s2s_in
s2s_use_starttls: required
outgoing_s2s_families:
  - ipv4
auth_method: internal
acme:
  auto: false
access_rules:
  c2s:
    allow: all
  s2s:
    allow: all
shaper_rules:
  c2s_shaper: none
modules:
  mod_roster: {}
  mod_s2s_dialback: {}
EOF
        cat >"$d/conf/ejabberdctl.cfg" <<EOF
ERLANG_NODE=s2sbench$name@localhost
ERL_DIST_PORT=$dist
INET_DIST_INTERFACE=127.0.0.1
EJABBERD_PID_PATH=$d/ejabberd.pid
EOF
        chown -R ejabberd:ejabberd "$d"
        ejctl "$d" start
        wait_port $address 15222 || { tail "$d"/logs/* >&2; return 1; }
        for i in $(seq "$ACCOUNTS"); do ejctl "$d" register "u$i" "$name.bench" pw >/dev/null; done
        for _ in $(seq 50); do [ -s "$d/ejabberd.pid" ] && break; sleep 0.1; done
        pids+=("$(tr -dc 0-9 <"$d/ejabberd.pid")")
    done
    load 15222 ea.bench 15222 eb.bench "${pids[0]}" "${pids[1]}" --host-a 127.0.0.4 --host-b 127.0.0.5 \
        | sed 's/^RESULT/RESULT ejabberd/' || true
    throughput ejabberd 127.0.0.4 15222 ea.bench 127.0.0.5 15222 eb.bench "${pids[0]}" "${pids[1]}"
    for name in ea eb; do ejctl "$RUN/$name" stop >/dev/null || true; done
    stop "${pids[@]}" "$dns_pid"
}

for t in "${targets[@]}"; do
    case "$t" in
        candor) candor_pair ;;
        prosody) prosody_pair ;;
        ejabberd) ejabberd_pair ;;
        *) say "unknown target $t (candor, prosody, ejabberd)"; exit 2 ;;
    esac
done
