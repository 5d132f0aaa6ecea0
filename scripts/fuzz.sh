#!/usr/bin/env bash
# Runs Parley's cargo-fuzz targets (fuzz/fuzz_targets/) for a fixed time each.
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]      default: all, 60 s per target
#   scripts/fuzz.sh list                         list the targets
#
# Only a stable toolchain is needed: cargo-fuzz's nightly-only flags
# (-Zsanitizer, sancov passes) are unlocked with RUSTC_BOOTSTRAP=1.
# One-time setup: cargo install cargo-fuzz --locked
#
# Each target runs as one libFuzzer process (one core, the same as -jobs=1 but
# with the output on the terminal), at nice 19. New inputs go to
# fuzz/corpus/TARGET (not committed); the committed seeds in fuzz/seeds/TARGET
# are read too, and the libFuzzer dictionaries in fuzz/dicts/ where one fits
# the target. Crashes land in fuzz/artifacts/TARGET/; reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none TARGET fuzz/artifacts/TARGET/crash-...
# (run from the repository root or fuzz/) and minimise it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz tmin -s none TARGET fuzz/artifacts/TARGET/crash-...
# Logs: fuzz/logs/TARGET.log; a summary line per target is printed at the end.
#
# Environment:
#   FUZZ_SANITIZER  cargo-fuzz sanitizer (default: none; our crates forbid
#                   unsafe code, so AddressSanitizer mostly costs throughput;
#                   use "address" to check the dependencies' unsafe code too)
#   FUZZ_ARGS       extra libFuzzer flags, e.g. "-max_len=8192 -jobs=1"
#   FUZZ_NICE       nice level (default 19)
#   CARGO_BUILD_JOBS  respected (set it to 1 on a shared machine)
# Builds always use debug assertions and overflow checks (-a).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz="$root/fuzz"
export RUSTC_BOOTSTRAP=1

sanitizer="${FUZZ_SANITIZER:-none}"
nice_level="${FUZZ_NICE:-19}"
target_arg="${1:-all}"
seconds="${2:-60}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

cd "$fuzz"
targets=()
while IFS= read -r t; do targets+=("$t"); done < <(cargo fuzz list)

if [[ "$target_arg" == "list" ]]; then
    printf '%s\n' "${targets[@]}"
    exit 0
fi
if [[ ! "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -lt 1 ]]; then
    echo "SECONDS must be a positive integer, got '$seconds'" >&2
    exit 2
fi
if [[ "$target_arg" == "all" ]]; then
    run=("${targets[@]}")
else
    found=0
    for t in "${targets[@]}"; do [[ "$t" == "$target_arg" ]] && found=1; done
    if [[ $found -eq 0 ]]; then
        echo "unknown target '$target_arg'; targets: ${targets[*]}" >&2
        exit 2
    fi
    run=("$target_arg")
fi

mkdir -p "$fuzz/logs"
# Build everything once up front, so the timed runs below only fuzz.
if [[ ${#run[@]} -gt 1 ]]; then
    nice -n "$nice_level" cargo fuzz build -a -s "$sanitizer"
else
    nice -n "$nice_level" cargo fuzz build -a -s "$sanitizer" "${run[0]}"
fi

summary=()
failed=0
for t in "${run[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    seeds=()
    [[ -d "seeds/$t" ]] && seeds=("seeds/$t")
    dict=()
    case "$t" in
        sip_message | sip_frame) dict=(-dict=dicts/sip.dict) ;;
        sdp_answer) dict=(-dict=dicts/sdp.dict) ;;
        sip_digest) dict=(-dict=dicts/sip_digest.dict) ;;
    esac
    log="logs/$t.log"
    echo "=== $t: ${seconds}s (log: fuzz/$log)"
    start=$(date +%s)
    set +e
    # shellcheck disable=SC2086
    nice -n "$nice_level" cargo fuzz run -a -s "$sanitizer" "$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "${dict[@]}" ${FUZZ_ARGS:-} 2>&1 | tee "$log" | grep -E "^(#[0-9]+[[:space:]]+(INITED|DONE|pulse))|panicked|ERROR|SUMMARY|Done "
    rc=${PIPESTATUS[0]}
    set -e
    end=$(date +%s)
    final=$(grep -E "^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)" "$log" | tail -n 1 || true)
    secs=$(grep -oE "^Done [0-9]+ runs in [0-9]+ second" "$log" | grep -oE "in [0-9]+" | grep -oE "[0-9]+" || echo "$((end - start))")
    execs=$(grep -oE "stat::number_of_executed_units: [0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
    cov=$(grep -oE "cov: [0-9]+ ft: [0-9]+" <<<"$final" || echo "cov: ? ft: ?")
    corp=$(grep -oE "corp: [0-9]+/[0-9]+[a-zA-Z]*" <<<"$final" || echo "corp: ?")
    status=ok
    if [[ $rc -ne 0 ]]; then
        status="FAILED (rc $rc, see fuzz/$log and fuzz/artifacts/$t/)"
        failed=1
    fi
    summary+=("$(printf '%-12s %5ss  execs %-10s %s  %s  %s' "$t" "$secs" "$execs" "$cov" "$corp" "$status")")
done

echo
echo "target        time  executions        coverage"
printf '%s\n' "${summary[@]}"
exit $failed
