#!/usr/bin/env bash
# HTTP File Upload throughput (XEP-0363): Candor (sealed files, AES-256-GCM) next to Prosody's mod_http_file_share
# (Debian's prosody, a private instance), both on loopback in the same run. For each server: COUNT files of SIZE MiB
# are PUT one after the other with curl, then fetched with GET; the table gives MB/s (wall clock) and the server
# process's CPU milliseconds per MiB (/proc/PID/stat utime+stime), which suffers less from a shared machine.
#
#   bench/upload.sh [--write]        UPLOAD_COUNT (default 8), UPLOAD_MIB (default 32), CANDOR_DLL (default: build)
#
# --write appends the table to docs/PERFORMANCE.md. Needs root (Prosody runs as user prosody through setpriv),
# prosody, curl and python3-slixmpp from Debian. State in $UB_RUN (default /tmp/candor-upload-bench).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN=${UB_RUN:-/tmp/candor-upload-bench}
COUNT=${UPLOAD_COUNT:-8}
MIB=${UPLOAD_MIB:-32}
SIZE=$((MIB * 1024 * 1024))
write=0
[ "${1:-}" = --write ] && write=1

for tool in prosody prosodyctl curl setpriv; do command -v $tool >/dev/null || { echo "missing $tool (apt-get install prosody curl)" >&2; exit 1; }; done
/usr/bin/python3 -c 'import slixmpp' 2>/dev/null || { echo "missing python3-slixmpp" >&2; exit 1; }

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.2; done; echo "nothing listens on $1" >&2; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
now() { date +%s.%N; }

rm -rf "$RUN"; mkdir -p "$RUN"
head -c "$SIZE" /dev/urandom >"$RUN/file.bin"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# ---- Candor
if [ -z "${CANDOR_DLL:-}" ]; then
    dotnet build "$ROOT/src/Candor" -c Release -o "$RUN/candor-bin" >/dev/null
    CANDOR_DLL=$RUN/candor-bin/candor.dll
fi
c_c2s=$(free_port); c_http=$(free_port)
dotnet "$CANDOR_DLL" user add bench@localhost --password benchpw --data "$RUN/candor-data" >/dev/null
CANDOR__UploadMaxBytes=$((SIZE + 1024)) CANDOR__UploadQuotaBytes=0 dotnet "$CANDOR_DLL" serve --data "$RUN/candor-data" --bind 127.0.0.1 \
    --c2s-port "$c_c2s" --tls-port -1 --s2s-port -1 --http-port "$c_http" --https-port -1 --allow-plaintext --log-level Warning \
    >"$RUN/candor.log" 2>&1 &
candor_pid=$!; pids+=("$candor_pid")
wait_port "$c_c2s"; wait_port "$c_http"

# ---- Prosody (the same shape as ../shared/xmpp-bench/peers.sh: private config, run as user prosody)
p_c2s=$(free_port); p_http=$(free_port)
pd=$RUN/prosody; mkdir -p "$pd/data"
cat >"$pd/prosody.cfg.lua" <<CFG
pidfile = "$pd/prosody.pid"
data_path = "$pd/data"
log = { warn = "$pd/prosody.log" }
interfaces = { "127.0.0.1" }
c2s_ports = { $p_c2s }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { }
http_ports = { $p_http }
http_interfaces = { "127.0.0.1" }
https_ports = { }
modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "posix"; "http" }
modules_disabled = { "s2s"; "offline"; "tls" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
VirtualHost "localhost"
Component "upload.localhost" "http_file_share"
http_file_share_size_limit = $((SIZE + 1024))
http_file_share_daily_quota = $((SIZE * (COUNT + 1) * 2))
CFG
chown -R prosody:prosody "$pd"
setpriv --reuid=prosody --regid=prosody --init-groups prosodyctl --config "$pd/prosody.cfg.lua" register bench localhost benchpw
(cd "$pd" && exec setpriv --reuid=prosody --regid=prosody --init-groups prosody --config "$pd/prosody.cfg.lua" -F >"$pd/stdout.log" 2>&1) &
pids+=("$!")
wait_port "$p_c2s"; wait_port "$p_http"
prosody_pid=$(cat "$pd/prosody.pid")

# run NAME PID C2S HTTP: COUNT uploads then COUNT downloads; prints one table row.
run() {
    local name=$1 pid=$2 c2s=$3 http=$4 slots
    slots=$(/usr/bin/python3 "$ROOT/bench/upload_slots.py" 127.0.0.1 "$c2s" bench@localhost benchpw upload.localhost "$COUNT" "$SIZE" application/octet-stream)
    [ "$(wc -l <<<"$slots")" = "$COUNT" ] || { echo "$name: expected $COUNT slots, got: $slots" >&2; exit 1; }
    local resolve=(--resolve "localhost:$http:127.0.0.1" --resolve "upload.localhost:$http:127.0.0.1")
    local t0 c0 t1 c1 t2 c2
    t0=$(now); c0=$(cpu_ticks "$pid")
    while IFS=$'\t' read -r put get headers; do
        # No "Expect: 100-continue" wait: the body follows the headers at once, for both servers.
        local h=(-H "Content-Type: application/octet-stream" -H "Expect:")
        if [ -n "$headers" ]; then while IFS= read -r line; do h+=(-H "$line"); done < <(tr '\t' '\n' <<<"$headers"); fi
        code=$(curl -sS -o /dev/null -w '%{http_code}' "${resolve[@]}" -X PUT "${h[@]}" --data-binary "@$RUN/file.bin" "$put")
        [ "$code" = 201 ] || [ "$code" = 200 ] || { echo "$name: PUT answered $code" >&2; exit 1; }
    done <<<"$slots"
    t1=$(now); c1=$(cpu_ticks "$pid")
    while IFS=$'\t' read -r put get headers; do
        curl -sS -f "${resolve[@]}" -o "$RUN/got.bin" "$get"
        cmp -s "$RUN/got.bin" "$RUN/file.bin" || { echo "$name: the file came back different" >&2; exit 1; }
    done <<<"$slots"
    t2=$(now); c2=$(cpu_ticks "$pid")
    local hz; hz=$(getconf CLK_TCK)
    awk -v n="$name" -v mib=$((MIB * COUNT)) -v t0="$t0" -v t1="$t1" -v t2="$t2" -v c0="$c0" -v c1="$c1" -v c2="$c2" -v hz="$hz" -v rss="$(awk '/VmHWM/{print $2}' /proc/$pid/status)" \
        'BEGIN { printf "| %s | %.0f | %.1f | %.0f | %.1f | %.0f |\n", n, mib / (t1 - t0), (c1 - c0) * 1000 / hz / mib, mib / (t2 - t1), (c2 - c1) * 1000 / hz / mib, rss / 1024 }'
}

table=$(
    echo "| server | upload MiB/s | upload server CPU ms/MiB | download MiB/s | download server CPU ms/MiB | server peak RSS MiB |"
    echo "|---|---|---|---|---|---|"
    run "Candor (sealed, AES-256-GCM)" "$candor_pid" "$c_c2s" "$c_http"
    run "Prosody $(dpkg-query -W -f='${Version}' prosody) mod_http_file_share (plain files)" "$prosody_pid" "$p_c2s" "$p_http"
)
echo "$table"
if [ "$write" = 1 ]; then
    {
        echo
        echo "### Upload run of $(date -u +%Y-%m-%d) ($(nproc) cores; machine shared, indicative)"
        echo
        echo "Command: \`UPLOAD_COUNT=$COUNT UPLOAD_MIB=$MIB bench/upload.sh\` ($COUNT files of $MIB MiB, one at a time, curl over loopback HTTP)"
        echo
        echo "$table"
    } >>"$ROOT/docs/PERFORMANCE.md"
fi
