#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer and AddressSanitizer and runs each
# named target (every one by default) for a bounded time; fails on the first
# crash, trap, sanitizer report, hang (-timeout) or oversized allocation.
#
#   Fuzz/fuzz.sh [--seconds N] [TARGET...]
#
# Targets and their seeds: Fuzz/Corpus/TARGET/. New inputs go to
# $FUZZ_WORK/corpus/TARGET (default .build/fuzz), findings to
# $FUZZ_WORK/artifacts/, each run's output to $FUZZ_WORK/TARGET.log; the
# committed seeds are only read. $FUZZ_BUILD is the build folder (default
# .build/fuzz-build).
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)

seconds=30
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=($(ls Corpus))

# The longest input worth trying per target: a few tensors or records, a
# small image, a JSON file, a command-line class list.
declare -A max_len=(
  [safetensors]=16384 [npy]=4096 [npz]=16384 [png]=16384 [jpeg]=16384
  [cifar]=9219 [state]=8192 [config]=4096 [classes]=1024
)

work=${FUZZ_WORK:-$root/.build/fuzz}
build=${FUZZ_BUILD:-$root/.build/fuzz-build}
# SwiftPM's --sanitize fuzzer only links libFuzzer's main; the -Xswiftc and
# -Xcc flags add the coverage instrumentation it needs to every module.
mkdir -p "$work/artifacts"
echo "== build (log $work/build.log)"
if ! swift build --scratch-path "$build" --sanitize fuzzer --sanitize address \
  -Xswiftc -sanitize=fuzzer -Xcc -fsanitize=fuzzer-no-link >"$work/build.log" 2>&1; then
  # gold warns about every sanitizer symbol it cannot export; noise.
  grep -v "Cannot export local symbol" "$work/build.log" | tail -n 40 >&2
  echo "fuzz.sh: build failed" >&2
  exit 1
fi
binary="$build/debug/biggan-fuzz"
for target in "${targets[@]}"; do
  [ -d "Corpus/$target" ] && [ -n "${max_len[$target]:-}" ] || { echo "fuzz.sh: no target '$target'" >&2; exit 2; }
done

# One target's run; its exit status says whether it found anything.
fuzz() {
  local target=$1
  mkdir -p "$work/corpus/$target"
  # Leaks are not what these targets look for, and Foundation leaks a
  # buffer on every empty file it reads. Swift's own backtracer would
  # symbolicate each trap slowly before libFuzzer reports it.
  FUZZ_TARGET=$target SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 \
    "$binary" "$work/corpus/$target" "Corpus/$target" \
    -max_total_time="$seconds" -max_len="${max_len[$target]}" -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$target-" >"$work/$target.log" 2>&1
}

# Each libFuzzer run uses one core: as many run at once as there are cores.
parallel=$(nproc 2>/dev/null || echo 1)
for ((first = 0; first < ${#targets[@]}; first += parallel)); do
  batch=("${targets[@]:first:parallel}")
  pids=()
  for target in "${batch[@]}"; do
    echo "== fuzz $target: ${seconds}s"
    fuzz "$target" &
    pids+=($!)
  done
  for i in "${!batch[@]}"; do
    target=${batch[$i]}
    log="$work/$target.log"
    if ! wait "${pids[$i]}"; then
      tail -n 40 "$log" >&2
      echo "fuzz.sh: $target failed (log $log); reproduce with FUZZ_TARGET=$target $binary FILE" >&2
      exit 1
    fi
    echo "-- $target"
    grep -E "^(Done|stat::new_units_added|stat::peak_rss_mb)" "$log"
  done
done
