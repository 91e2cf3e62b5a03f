#!/usr/bin/env bash
# A fuzzing campaign (BENCHMARKS.md, "Fuzzing campaigns"): each named target in turn, one
# process, RUNS executions, starting from its committed seed corpus. New inputs go to a work
# directory (default /tmp/tessera-fuzz/NAME), never into fuzz/corpus; a crash stops the target
# and leaves its input in fuzz/artifacts/NAME/.
#   fuzz/scripts/campaign.sh [RUNS] [TARGET...]     (default: 10000000, every target)
# Needs the nightly toolchain; installs cargo-fuzz from crates.io when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10000000}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(oauth_token batch_query events accounting system_toml packet junos)
work="${FUZZ_WORK:-/tmp/tessera-fuzz}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
# No sanitizer: every crate forbids unsafe code, so what the fuzzer can find is a panic or a
# broken property, and without AddressSanitizer it runs several times faster.
cargo +nightly fuzz build -O -s none
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  start=$(date +%s)
  echo "== $t: $(date -u +%FT%TZ) cargo +nightly fuzz run -O -s none $t $work/$t corpus/$t -- -runs=$runs"
  status=0
  cargo +nightly fuzz run -O -s none "$t" "$work/$t" "corpus/$t" -- \
    -runs="$runs" -print_final_stats=1 > "$work/$t.log" 2>&1 || status=$?
  end=$(date +%s)
  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$work/$t.log" || true
  echo "   wall $((end - start)) s; corpus $(ls "$work/$t" | wc -l) new + $(ls "corpus/$t" | wc -l) seeds; exit $status"
  if [ "$status" -ne 0 ]; then tail -40 "$work/$t.log"; fi
done
