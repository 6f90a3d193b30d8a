#!/usr/bin/env bash
# Fuzzes every target for a bounded time with AFL++ (Debian's afl++) through SharpFuzz, then runs the
# differential check of the parser against System.Xml for the same time.
#
#   fuzz/run.sh [SECONDS-PER-TARGET] [TARGET...]     (default 60 s, every target)
#
# Publishes fuzz/Candor.Fuzz, instruments Candor.Xml, Candor.Xmpp and Candor.Server beside it, and runs
# afl-fuzz -V SECONDS on each target with fuzz/corpus/<target> as seeds. Findings go to
# fuzz/out/findings/<target>/default/{crashes,hangs}; a summary per target is printed.
# Exit status: 0 no crash; 1 a crash, a hang or a differential disagreement was found; 2 could not run
# (no afl-fuzz and no way to install it, or the build failed).
# A crash becomes a regression: copy the file into fuzz/corpus/<target>/ (the replay test then runs it) and fix.
set -uo pipefail
exec </dev/null

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$(pwd)
SECONDS_PER_TARGET=${1:-60}
shift $(( $# > 0 ? 1 : 0 ))
OUT="$ROOT/fuzz/out"
BIN="$OUT/bin"

say() { echo "fuzz: $*" >&2; }

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 DEBIAN_FRONTEND=noninteractive

if ! command -v afl-fuzz >/dev/null; then
    sudo=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo -n env DEBIAN_FRONTEND=noninteractive); else
            say "afl-fuzz is missing and we are not root: apt-get install afl++"; exit 2; fi
    fi
    say "installing afl++"
    if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -q --no-install-recommends afl++; } >"$OUT.apt.log" 2>&1; then
        tail -n 20 "$OUT.apt.log" >&2
        say "could not install afl++"; exit 2
    fi
fi

rm -rf "$BIN"
mkdir -p "$OUT/findings"
if ! dotnet publish fuzz/Candor.Fuzz/Candor.Fuzz.csproj -c Release -o "$BIN" >"$OUT/publish.log" 2>&1; then
    tail -n 30 "$OUT/publish.log" >&2
    say "build failed"; exit 2
fi
dotnet "$BIN/Candor.Fuzz.dll" instrument "$BIN" >"$OUT/instrument.log" 2>&1 || { cat "$OUT/instrument.log" >&2; say "instrumentation failed"; exit 2; }

if [ $# -gt 0 ]; then TARGETS=("$@"); else mapfile -t TARGETS < <(dotnet "$BIN/Candor.Fuzz.dll" list); fi

# afl-fuzz runs the .NET host, which is not instrumented itself (SharpFuzz reports coverage from the managed
# code); containers and CI machines have neither a settable core_pattern nor CPU frequency scaling.
export AFL_SKIP_BIN_CHECK=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
export AFL_FORKSRV_INIT_TMOUT=30000 AFL_QUIET=1

status=0
for target in "${TARGETS[@]}"; do
    findings="$OUT/findings/$target"
    rm -rf "$findings"
    if [ "$target" = differential ]; then
        # The generator's documents, then AFL's mutations of the corpus, both through the two parsers.
        if ! timeout $((SECONDS_PER_TARGET + 60)) dotnet "$BIN/Candor.Fuzz.dll" generate "$SECONDS_PER_TARGET" >"$OUT/differential-generated.log" 2>&1; then
            cat "$OUT/differential-generated.log" >&2; status=1
        fi
        say "$(tail -n 1 "$OUT/differential-generated.log")"
    fi
    timeout $((SECONDS_PER_TARGET + 120)) afl-fuzz -V "$SECONDS_PER_TARGET" -t 5000 -m none -i "fuzz/corpus/$target" -o "$findings" \
        -- dotnet "$BIN/Candor.Fuzz.dll" "$target" >"$OUT/$target.log" 2>&1
    stats="$findings/default/fuzzer_stats"
    if [ ! -f "$stats" ]; then
        tail -n 30 "$OUT/$target.log" >&2
        say "$target: afl-fuzz did not run"; status=$(( status == 1 ? 1 : 2 )); continue
    fi
    stat() { grep -E "^$1 +:" "$stats" | sed 's/.*: //'; }
    crashes=$(find "$findings/default/crashes" -type f ! -name README.txt 2>/dev/null | wc -l)
    hangs=$(find "$findings/default/hangs" -type f 2>/dev/null | wc -l)
    say "$target: $(stat execs_done) executions in $(stat run_time) s ($(stat execs_per_sec)/s), $(stat corpus_count) paths, $(stat bitmap_cvg) coverage, $crashes crashes, $hangs hangs"
    if [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then
        status=1
        for f in $(find "$findings/default/crashes" "$findings/default/hangs" -type f ! -name README.txt | head -n 5); do
            say "  $f"
            dotnet "$BIN/Candor.Fuzz.dll" replay "$target" "$f" 2>&1 | head -n 5 >&2
        done
    fi
done
exit $status
