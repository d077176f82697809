#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each on the nightly toolchain, starting
# from the committed corpus; new inputs go to a scratch directory, crashes to artifacts/<target>/.
# Fails on the first crash. CI runs a smoke (`fuzz/run.sh 20`); a long campaign:
#   fuzz/run.sh 1800                 # 30 minutes per target
#   fuzz/run.sh 1800 torn_workload   # one target
# Prints, per target, the executions libFuzzer reports.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(decode_record replay_segment torn_workload snapshot_parse append_input)
fi
if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
    case "$t" in
        decode_record | replay_segment) dict=dict/frame.dict ;;
        *) dict=dict/json.dict ;;
    esac
    mkdir -p "$scratch/$t" "artifacts/$t"
    log="$scratch/$t.log"
    if ! cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -dict="$dict" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz: $t FAILED; the input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    echo "fuzz: $t ${seconds}s, ${runs:-?} executions, 0 crashes"
done
