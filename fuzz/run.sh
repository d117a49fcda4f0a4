#!/usr/bin/env bash
# Runs spoolcast's fuzz targets for a set time, on the stable toolchain.
#
#   fuzz/run.sh TARGET [SECONDS]   one target, SECONDS (default 600) of fuzzing
#   fuzz/run.sh all [SECONDS]      every target in turn, SECONDS each
#   fuzz/run.sh minimize TARGET    fold what the runs found into fuzz/corpus/TARGET
#   fuzz/run.sh list               the targets
#
# cargo-fuzz is installed from crates.io when missing. It builds with flags
# only nightly accepts (-Zsanitizer, the sanitizer-coverage passes);
# RUSTC_BOOTSTRAP=1 lets the stable compiler take them, so no nightly
# toolchain is needed. AddressSanitizer is used when the toolchain ships its
# runtime (rustup's x86_64 Linux one does), otherwise no sanitizer
# (FUZZ_SANITIZER=address|none overrides). Debug assertions and overflow
# checks are on, as cargo-fuzz does by default.
#
# One fuzzing process, in the foreground (what -jobs=1 -workers=1 would
# be, without libFuzzer moving the output to fuzz-0.log): the machines this
# runs on are shared. Runs read the committed seeds (fuzz/corpus/TARGET)
# and the crashes found before (fuzz/regressions/TARGET, kept whatever
# their coverage) and never write to them: new inputs go to
# fuzz/target/corpus/TARGET, crashes to fuzz/artifacts/TARGET (both
# git-ignored), the log to fuzz/target/logs/TARGET.log. `minimize` merges
# the committed and the new inputs into a small set covering the same code
# (edges) and makes it the committed corpus.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

sanitizer="${FUZZ_SANITIZER:-}"
if [[ -z "$sanitizer" ]]; then
  runtime_dir="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/lib"
  if compgen -G "$runtime_dir/librustc-*_rt.asan.a" >/dev/null; then
    sanitizer=address
  else
    sanitizer=none
  fi
fi

targets() {
  cargo fuzz list
}

usage() {
  sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

run() {
  local target="$1" seconds="$2"
  local work="target/corpus/$target" log="target/logs/$target.log"
  local dict=() pinned=()
  mkdir -p "$work" "corpus/$target" target/logs
  [[ -f "dict/$target.dict" ]] && dict=("-dict=dict/$target.dict")
  [[ -d "regressions/$target" ]] && pinned=("regressions/$target")
  echo "== $target: ${seconds}s, sanitizer $sanitizer" >&2
  # -timeout: an input taking seconds is a finding (a hang), not patience.
  # -rss_limit_mb: a parser that allocates from a length field is too.
  cargo fuzz run --sanitizer "$sanitizer" "$target" "$work" "corpus/$target" "${pinned[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict[@]}" 2>&1 | tee "$log"
}

minimize() {
  local target="$1" merged
  merged="$(mktemp -d "target/merged-$target.XXXXXX")"
  mkdir -p "target/corpus/$target" "corpus/$target"
  # Every edge covered, hit counts ignored: keeping an input per counter
  # bucket would make the committed corpus ten times larger for little.
  cargo fuzz run --sanitizer "$sanitizer" "$target" "$merged" \
    "corpus/$target" "target/corpus/$target" -- -set_cover_merge=1 -use_counters=0
  rm -rf "corpus/$target"
  mv "$merged" "corpus/$target"
  echo "corpus/$target: $(find "corpus/$target" -type f | wc -l) files, $(du -sh "corpus/$target" | cut -f1)" >&2
}

[[ $# -ge 1 ]] || usage
case "$1" in
  list) targets ;;
  minimize)
    [[ $# -eq 2 ]] || usage
    minimize "$2"
    ;;
  all)
    seconds="${2:-600}"
    for t in $(targets); do
      run "$t" "$seconds"
    done
    ;;
  -h | --help) usage ;;
  *)
    grep -qx -- "$1" <<<"$(targets)" || { echo "no fuzz target $1 (see: $0 list)" >&2; exit 2; }
    run "$1" "${2:-600}"
    ;;
esac
