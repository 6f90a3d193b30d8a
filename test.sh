#!/usr/bin/env bash
# The project test command: build the solution in Release and run every test project.
#
#   ./test.sh [extra dotnet test arguments, e.g. --filter Category!=Interop]
#
# On Debian (as root) it first installs what the interop tests drive, if missing:
# python3-slixmpp, profanity, tmux, prosody, chromium, coturn, python-omemo (python3-omemo, -oldmemo, -twomemo, -xmlschema),
# postgresql, python3-prometheus-client (the metrics test parses /metrics with it) (the browser test uses Debian's Chromium, never a
# downloaded browser). The last line printed is the summary over all test
# projects: "N passed, N failed" (plus ", N skipped" when some were skipped). The exit status
# is non-zero if the build failed, any test failed, or the test run did not complete.
set -uo pipefail
exec </dev/null   # CI may run us without stdin; nothing below may wait for input

cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
ROOT=$(pwd)

export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export DEBIAN_FRONTEND=noninteractive

say() { echo "test.sh: $*" >&2; }

# ------------------------------------------------------------------ system packages
PACKAGES=(python3-slixmpp profanity tmux prosody ejabberd lua-unbound chromium python3-omemo python3-oldmemo python3-twomemo python3-xmlschema coturn postgresql python3-prometheus-client gnome-keyring dbus libsecret-tools)

install_packages() {
    command -v dpkg-query >/dev/null || { say "not a Debian system: make sure ${PACKAGES[*]} are installed"; return 0; }
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo=(sudo -n env DEBIAN_FRONTEND=noninteractive)
        else
            say "warning: ${missing[*]} not installed and not root; the interop tests will fail"
            return 0
        fi
    fi
    say "installing ${missing[*]}"
    local log; log=$(mktemp)
    if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -q "${missing[@]}"; } >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        say "warning: apt-get could not install ${missing[*]}; the interop tests will fail"
        return 0
    fi
    rm -f "$log"
    # Debian starts a system-wide Prosody on install; it would hold port 5222, which `candor serve` uses by
    # default. The tests run their own private Prosody, so the system one is stopped and kept from starting.
    if [[ " ${missing[*]} " == *" prosody "* ]]; then
        "${sudo[@]}" service prosody stop >/dev/null 2>&1 || true
        "${sudo[@]}" update-rc.d prosody disable >/dev/null 2>&1 || true
    fi
    # The same for ejabberd (the import and federation tests run a private node on free loopback ports).
    if [[ " ${missing[*]} " == *" ejabberd "* ]]; then
        "${sudo[@]}" service ejabberd stop >/dev/null 2>&1 || true
        "${sudo[@]}" update-rc.d ejabberd disable >/dev/null 2>&1 || true
    fi
    # The same for coturn: the TURN test starts its own on free loopback ports.
    if [[ " ${missing[*]} " == *" coturn "* ]]; then
        "${sudo[@]}" service coturn stop >/dev/null 2>&1 || true
        "${sudo[@]}" update-rc.d coturn disable >/dev/null 2>&1 || true
    fi
    # The same for PostgreSQL: the tests start a private cluster on a free port (Harness/PostgresCluster.cs).
    if [[ " ${missing[*]} " == *" postgresql "* ]]; then
        "${sudo[@]}" service postgresql stop >/dev/null 2>&1 || true
        "${sudo[@]}" update-rc.d postgresql disable >/dev/null 2>&1 || true
    fi
}

install_packages

DOTNET=$(command -v dotnet || echo /usr/bin/dotnet)
[ -x "$DOTNET" ] || { say "dotnet SDK not found (expected /usr/bin/dotnet)"; echo "build failed"; exit 1; }

# ------------------------------------------------------------------ build
if ! "$DOTNET" build Candor.slnx -c Release; then
    say "build failed"
    echo "build failed"
    exit 1
fi

# ------------------------------------------------------------------ test
RESULTS="$ROOT/TestResults/test.sh"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

# -m:1: one test project at a time, so that the browser and flood tests do not compete with the server suite
# for the machine's two cores (their timeouts measure the code, not the contention).
"$DOTNET" test Candor.slnx -c Release --no-build -m:1 \
    --results-directory "$RESULTS" \
    --logger "trx;LogFilePrefix=candor" \
    --logger "console;verbosity=normal" \
    --blame-hang-timeout 15m --blame-hang-dump-type none \
    "$@"
test_status=$?

# Sum the counters of every test project's .trx file.
passed=0 failed=0 skipped=0 files=0
counter() { grep -o " $1=\"[0-9]*\"" <<<"$2" | head -n1 | tr -dc 0-9; }
while IFS= read -r -d '' trx; do
    line=$(grep -o '<Counters [^>]*>' "$trx" | head -n1)
    [ -n "$line" ] || continue
    files=$((files + 1))
    passed=$((passed + $(counter passed "$line")))
    failed=$((failed + $(counter failed "$line") + $(counter error "$line") + $(counter timeout "$line") + $(counter aborted "$line")))
    skipped=$((skipped + $(counter notExecuted "$line")))
done < <(find "$RESULTS" -name '*.trx' -print0)

# A test that fails is run once more on its own, to tell a flake (a race with the machine's load) from a failure.
# Both are named just above the summary line (CI keeps only the end of the output); only a test that fails twice
# counts as failed. CANDOR_RERUN=0 turns the second run off.
failures=$([ "$failed" -gt 0 ] && /usr/bin/python3 tests/trx.py failed "$RESULTS")
if [ "$failed" -gt 0 ] && [ "$failed" -le 10 ] && [ "$(wc -l <<<"$failures")" -eq "$failed" ] && [ "${CANDOR_RERUN:-1}" = 1 ]; then
    filter=$(cut -f1 <<<"$failures" | sed 's/(.*//' | sort -u | sed 's/^/FullyQualifiedName=/' | paste -sd'|')
    say "running the $failed failed test(s) once more: $filter"
    "$DOTNET" test Candor.slnx -c Release --no-build -m:1 --results-directory "$RESULTS/rerun" \
        --logger "trx;LogFilePrefix=rerun" --logger "console;verbosity=normal" \
        --blame-hang-timeout 15m --blame-hang-dump-type none --filter "$filter" >&2
    rerun_status=$?
    passed_again=$(/usr/bin/python3 tests/trx.py passed "$RESULTS/rerun")
    failed=0
    while IFS=$'\t' read -r name message; do
        if grep -qxF "$name" <<<"$passed_again"; then
            say "FLAKY $name (failed, then passed when run again): $message"
            passed=$((passed + 1))
        else
            say "FAILED $name: $message"
            failed=$((failed + 1))
        fi
    done <<<"$failures"
    [ "$failed" -eq 0 ] && test_status=$rerun_status
elif [ "$failed" -gt 0 ]; then
    sed 's/^/test.sh: FAILED /' <<<"$failures" >&2
fi

status=0
if [ "$files" -eq 0 ]; then
    say "no test results found in $RESULTS"
    status=1
elif [ "$test_status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    say "dotnet test exited with status $test_status although no test reported failure (crash or hang?)"
    status=1
fi
[ "$failed" -gt 0 ] && status=1

# ------------------------------------------------------------------ fuzzing (issue 8)
# In CI (CI=true), or with CANDOR_FUZZ=1, each fuzz target runs briefly under AFL++ (fuzz/run.sh, 20 s per
# target and 20 s of the differential generator: under four minutes of fuzzing); CANDOR_FUZZ=0 skips it.
# A crash or disagreement counts as one failed test; a fuzzer that cannot run (no afl++ to be had) is a
# warning, like the other tools above. docs/SECURITY.md says what the targets are.
if [ "${CANDOR_FUZZ:-${CI:-false}}" = true ] || [ "${CANDOR_FUZZ:-}" = 1 ]; then
    fuzz/run.sh "${CANDOR_FUZZ_SECONDS:-20}"
    case $? in
        0) passed=$((passed + 1)) ;;
        1) say "fuzzing found a crash or a disagreement (fuzz/out/findings)"; failed=$((failed + 1)); status=1 ;;
        *) say "warning: the fuzzers could not run" ;;
    esac
fi

summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary+=", $skipped skipped"
echo "$summary"
exit "$status"
