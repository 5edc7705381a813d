#!/usr/bin/env bash
# Coverage-guided fuzzing of Seam's parsers and importers with cargo fuzz
# (libFuzzer, nightly toolchain); see docs/fuzzing.md.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Default: 600 s for each target in fuzz/fuzz_targets/. `scripts/fuzz.sh 5` is
# a smoke run. Targets are release builds with debug assertions (overflow
# checks) and AddressSanitizer, as cargo fuzz makes them. Prints per target the executions, the coverage (libFuzzer's
# `cov:` edges and `ft:` features) and the crashes, timeouts and out-of-memory
# inputs found (saved under fuzz/artifacts/<target>/). Exits non-zero if any.
#
# Environment: FUZZ_RUNS=N stops a target after N executions (whichever of
# time and runs comes first); FUZZ_MAX_LEN=BYTES overrides the longest input
# mutated (e.g. 16384 fuzzes only the heads of GGUF files, 15 times faster);
# FUZZ_SANITIZER=none builds without AddressSanitizer (the targets are safe
# Rust; several times the executions per second, overflow checks kept).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(text bundle_bytes bundle_manifest checkpoint gguf tokenizer)
fi

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
bash scripts/fuzz-seeds.sh
cd fuzz
mkdir -p logs

# The longest input worth mutating, per target: the largest seed and some room.
max_len() {
    if [ -n "${FUZZ_MAX_LEN:-}" ]; then
        echo "$FUZZ_MAX_LEN"
        return
    fi
    case $1 in
        text) echo 32768 ;;
        gguf) echo 393216 ;;
        checkpoint) echo 16384 ;;
        *) echo 8192 ;;
    esac
}

failed=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "artifacts/$t"
    stamp=$(mktemp)
    seeds=()
    [ -d "seeds/$t" ] && seeds=("seeds/$t")
    set +e
    cargo +nightly fuzz run --debug-assertions --sanitizer "${FUZZ_SANITIZER:-address}" "$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -runs="${FUZZ_RUNS:--1}" -rss_limit_mb=2048 -timeout=10 \
        -max_len="$(max_len "$t")" -print_final_stats=1 >"logs/$t.log" 2>&1
    status=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "logs/$t.log" | awk '{print $2}' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "logs/$t.log" | tail -1 | awk '{print $2}')
    ft=$(grep -o 'ft: [0-9]*' "logs/$t.log" | tail -1 | awk '{print $2}')
    found=$(find "artifacts/$t" -type f -newer "$stamp" | wc -l)
    rm -f "$stamp"
    if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
        failed=1
    fi
    summary+=("$(printf '%-16s %12s %8s %8s %8s %6s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$found" "$status")")
done

printf '%-16s %12s %8s %8s %8s %6s\n' target executions cov ft crashes exit
printf '%s\n' "${summary[@]}"
[ "$failed" -eq 0 ] || echo "failures: see fuzz/logs/<target>.log and fuzz/artifacts/<target>/" >&2
exit "$failed"
