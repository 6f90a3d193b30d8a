#!/usr/bin/env bash
# Candor next to Prosody and ejabberd in one run of ../shared/xmpp-bench/compare.sh (loopback only).
#
#   bench/compare.sh [prosody] [ejabberd]      default: both peers and Candor
#
# Every knob of the harness passes through (XB_TLS=1, XB_PIN=1, XB_REPEAT=3, XB_AUTH=hashed, ...).
# Candor runs from a Release build with --allow-plaintext (the harness logs in with PLAIN; with XB_TLS=1 it
# uses STARTTLS) and --allow-registration (the harness registers u1..uN from loopback), logging at Warning.
# The table is printed and, with --write, appended to docs/PERFORMANCE.md with the exact command.
# Candor archives like the peers: every message for both ends with XB_MAM=1 (ArchiveDefault always), nothing
# otherwise (never). CANDOR_ARCHIVE_BOTH=1 adds the other case as a second target to the same run
# ("candor-noarchive" with XB_MAM=1, "candor-archive" without). CANDOR_METRICS_BOTH=1 adds "candor-nometrics"
# (Metrics=false: no exporter, no /metrics) beside "candor", whose /metrics is then scraped every 5 s meanwhile.
# CANDOR_BASELINE=COMMIT adds "candor-baseline": that commit of this repository (git archive, built apart), started
# the same way, e.g. CANDOR_BASELINE=7e2815f for issue 14's "no more than 10 % slower than 7e2815f"; with
# CANDOR_METRICS_BOTH=1 also "candor-baseline-nometrics". The baseline does not archive unless CANDOR_BASELINE_ARCHIVE=always.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${XB_HARNESS:-$ROOT/../shared/xmpp-bench}
export XB_RUN=${XB_RUN:-/tmp/xmpp-bench-run}
PORT=${CANDOR_BENCH_PORT:-35222}

write=0
peers=()
for a in "$@"; do
    case "$a" in
        --write) write=1 ;;
        prosody | ejabberd) peers+=("$a") ;;
        *) echo "usage: bench/compare.sh [--write] [prosody] [ejabberd]" >&2; exit 2 ;;
    esac
done
[ ${#peers[@]} -gt 0 ] || [ -n "${CANDOR_ONLY:-}" ] || peers=(prosody ejabberd)

command -v prosody >/dev/null && command -v ejabberdctl >/dev/null || "$HARNESS/peers.sh" install

# XB_SM=1 and/or XB_CARBONS=1: every client of every scenario enables stream management (XEP-0198, answering the
# server's <r/>) and/or carbons (XEP-0280) after bind; XB_CARBONS=2 also logs in a second resource per account
# in the messaging scenarios, which counts the copies it gets (expected: one "sent" and one "received" per
# delivered message). The shared harness has neither, so it runs from a copy in $XB_RUN/harness-smc: its load
# generator with bench/loadgen-sm-carbons.patch, built apart (loadgen-smc-bin), and the modules added to the peers'
# configurations (Prosody 0.12: "carbons", "smacks", both in core; ejabberd: mod_carboncopy, mod_stream_mgmt).
export XB_SM=${XB_SM:-0} XB_CARBONS=${XB_CARBONS:-0}
if [ "$XB_SM" != 0 ] || [ "$XB_CARBONS" != 0 ]; then
    copy=$XB_RUN/harness-smc
    rm -rf "$copy" && mkdir -p "$copy/loadgen"
    cp "$HARNESS/compare.sh" "$HARNESS/peers.sh" "$copy/"
    cp "$HARNESS"/loadgen/*.cs "$HARNESS"/loadgen/*.csproj "$copy/loadgen/"
    patch -s -d "$copy/loadgen" -p1 <"$ROOT/bench/loadgen-sm-carbons.patch"
    edit() { # FILE SED-EXPRESSION EXPECTED-TEXT-AFTER: fails if the harness changed under the edit
        sed -i "$2" "$copy/$1"
        grep -qF "$3" "$copy/$1" || { echo "bench/compare.sh: the harness's $1 changed; update the edit '$2'" >&2; exit 1; }
    }
    edit compare.sh 's#"$RUN/loadgen-bin/#"$RUN/loadgen-smc-bin/#' '"$RUN/loadgen-smc-bin/loadgen.dll"'
    edit peers.sh 's#^LOADGEN_BIN="$RUN/loadgen-bin"$#LOADGEN_BIN="$RUN/loadgen-smc-bin"#' 'LOADGEN_BIN="$RUN/loadgen-smc-bin"'
    edit peers.sh 's#local src="$RUN/loadgen-src"#local src="$RUN/loadgen-smc-src"#' 'local src="$RUN/loadgen-smc-src"'
    edit peers.sh 's#"posix"$mam_mod }#"posix"$mam_mod${XB_PROSODY_MODULES:-} }#' '"posix"$mam_mod${XB_PROSODY_MODULES:-} }'
    edit peers.sh 's#^$mam_mod$#$mam_mod\n${XB_EJABBERD_MODULES:-}#' '${XB_EJABBERD_MODULES:-}'
    XB_PROSODY_MODULES="" XB_EJABBERD_MODULES=""
    if [ "$XB_SM" != 0 ]; then
        XB_PROSODY_MODULES+='; "smacks"'
        XB_EJABBERD_MODULES+=$'  mod_stream_mgmt: {}\n'
    fi
    if [ "$XB_CARBONS" != 0 ]; then
        XB_PROSODY_MODULES+='; "carbons"'
        XB_EJABBERD_MODULES+=$'  mod_carboncopy: {}\n'
    fi
    export XB_PROSODY_MODULES XB_EJABBERD_MODULES
    HARNESS=$copy
fi
dotnet build "$ROOT/src/Candor" -c Release -o "$XB_RUN/candor-bin" >/dev/null
if [ -n "${CANDOR_BASELINE:-}" ]; then
    rm -rf "$XB_RUN/candor-baseline-src" && mkdir -p "$XB_RUN/candor-baseline-src"
    git -C "$ROOT" archive "$CANDOR_BASELINE" | tar -x -C "$XB_RUN/candor-baseline-src"
    dotnet build "$XB_RUN/candor-baseline-src/src/Candor" -c Release -o "$XB_RUN/candor-baseline-bin" >/dev/null
fi

targets=()
# candor_target NAME PORT ARCHIVE_DEFAULT [METRICS] [BIN]: a Candor with its own data directory, restarted before each
# scenario. METRICS "scrape" serves /metrics on PORT+100 and scrapes it every 5 s; "off" sets Metrics=false.
# Settings older builds may lack go through the environment, which ignores unknown names.
candor_target() {
    local name=$1 port=$2 archive=$3 metrics=${4:-} bin=${5:-$XB_RUN/candor-bin} state="$XB_RUN/$1" http=-1 scrape=""
    # A fresh database per run: an archive left by an earlier run makes every archived write slower.
    rm -rf "$state/data" && mkdir -p "$state"
    if [ "$metrics" = scrape ]; then
        http=$((port + 100))
        scrape="; (while sleep 5 && kill -0 \$(cat $state/pid) 2>/dev/null; do curl -s -o /dev/null http://127.0.0.1:$http/metrics; done) >/dev/null 2>&1 &"
    fi
    export "XB_START_${name//-/_}=CANDOR__ArchiveDefault=$archive CANDOR__Metrics=$([ "$metrics" = off ] && echo false || echo true) CANDOR__S2sPort=-1 ${XB_SERVER_CPUS:+taskset -c $XB_SERVER_CPUS} dotnet $bin/candor.dll serve \
  --data $state/data --bind 127.0.0.1 --c2s-port $port --tls-port -1 --http-port $http --https-port -1 \
  --allow-plaintext --allow-registration --log-level Warning >$state/log 2>&1 & echo \$! >$state/pid$scrape"
    export "XB_STOP_${name//-/_}=kill \$(cat $state/pid) 2>/dev/null; while kill -0 \$(cat $state/pid) 2>/dev/null; do sleep 0.1; done"
    targets+=("$name=127.0.0.1:$port:cat $state/pid")
}
if [ -n "${CANDOR_METRICS_BOTH:-}" ]; then
    candor_target candor "$PORT" never scrape
    candor_target candor-nometrics $((PORT + 1)) never off
elif [ "${XB_MAM:-0}" = 1 ]; then
    candor_target candor "$PORT" always
    [ -z "${CANDOR_ARCHIVE_BOTH:-}" ] || candor_target candor-noarchive $((PORT + 1)) never
else
    candor_target candor "$PORT" never
    [ -z "${CANDOR_ARCHIVE_BOTH:-}" ] || candor_target candor-archive $((PORT + 1)) always
fi
[ -z "${CANDOR_BASELINE:-}" ] || candor_target candor-baseline $((PORT + 2)) "${CANDOR_BASELINE_ARCHIVE:-never}" "" "$XB_RUN/candor-baseline-bin"
[ -z "${CANDOR_BASELINE:-}" ] || [ -z "${CANDOR_METRICS_BOTH:-}" ] || candor_target candor-baseline-nometrics $((PORT + 3)) never off "$XB_RUN/candor-baseline-bin"

out="$XB_RUN/results/candor-$(date +%Y%m%d-%H%M%S)"
XB_OUT=$out "$HARNESS/compare.sh" "${peers[@]}" "${targets[@]}"

if [ "$write" = 1 ]; then
    {
        echo
        echo "### Run of $(date -u +%Y-%m-%d) ($(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo))"
        echo
        echo "Command: \`$(env | grep -E '^(XB_(TLS|PIN|REPEAT|AUTH|MAM|SM|CARBONS|IDLE_CONNS|TP_DURATION|TP_WINDOW|LAT_DURATION|LAT_RATE)|CANDOR_ARCHIVE_BOTH|CANDOR_METRICS_BOTH|CANDOR_BASELINE|CANDOR_BASELINE_ARCHIVE)=' | tr '\n' ' ')bench/compare.sh ${peers[*]}\`"
        echo
        echo '```'
        cat "$out/settings.txt"
        echo
        cat "$out/table.txt"
        echo '```'
    } >>"$ROOT/docs/PERFORMANCE.md"
    echo "appended to docs/PERFORMANCE.md" >&2
fi
