#!/usr/bin/env bash
# Tests the ARM builds of spoolcast-agent on this x86_64 machine, under qemu
# user-mode emulation:
#
#   cross/test.sh [aarch64|armv7|all]     (default: all)
#
# For each target:
#  (a) the agent's unit tests (`--lib`), compiled for the target in release
#      mode (reusing cross/build.sh's dependencies) by Debian's compiler and
#      run through the qemu `runner` of .cargo/config.toml;
#  (b) two end-to-end tests of tests/printing.rs, with the test harness on
#      the host (host cargo, host target/) but the agent it starts being the
#      ARM binary dist/spoolcast-agent-<triple> under qemu, against the real
#      mosquitto and ippeveprinter (tests/support/agent.rs:
#      SPOOLCAST_TEST_AGENT_BIN, SPOOLCAST_TEST_AGENT_RUNNER).
#
# Needs cross/setup-toolchain.sh and cross/build.sh first, and the host test
# peers of scripts/setup (mosquitto, cups-ipp-utils, dbus).
set -euo pipefail
cd "$(dirname "$0")/.."

cross_cargo=${SPOOLCAST_CROSS_CARGO:-/usr/bin/cargo}
cross_rustc=${SPOOLCAST_CROSS_RUSTC:-/usr/bin/rustc}
cross_target_dir=${CARGO_TARGET_DIR:-$PWD/target/cross}
# The host toolchain (rustup) and the host build dir, as scripts/test uses.
unset CARGO_TARGET_DIR

e2e_tests=(
  a_job_prints_and_reports_printer_confirmed_completion
  a_jam_stops_the_job_and_it_completes_once_cleared
)

case ${1:-all} in
  aarch64) arches=(aarch64) ;;
  armv7) arches=(armv7) ;;
  all) arches=(aarch64 armv7) ;;
  *)
    echo "usage: cross/test.sh [aarch64|armv7|all]" >&2
    exit 2
    ;;
esac

declare -A triple=(
  [aarch64]=aarch64-unknown-linux-gnu
  [armv7]=armv7-unknown-linux-gnueabihf
)
# The same runners as .cargo/config.toml (cargo reads them from there for
# `cargo test --target`; the e2e tests need them spelled out).
declare -A runner=(
  [aarch64]="qemu-aarch64-static -L /usr/aarch64-linux-gnu"
  [armv7]="qemu-arm-static -L /usr/arm-linux-gnueabihf"
)

log() { echo "cross/test.sh: $*" >&2; }
timings=()

for arch in "${arches[@]}"; do
  t=${triple[$arch]}
  bin="$PWD/dist/spoolcast-agent-$t"
  if [[ ! -x $bin ]]; then
    log "$bin missing: run cross/build.sh $arch first"
    exit 1
  fi

  log "$t: unit tests under qemu"
  start=$SECONDS
  RUSTC=$cross_rustc CARGO_TARGET_DIR=$cross_target_dir \
    "$cross_cargo" test --release --lib --target "$t" -p spoolcast-agent
  timings+=("$t unit tests: $((SECONDS - start)) s (build + run)")

  log "$t: smoke run of $bin"
  ${runner[$arch]} "$bin" --version

  log "$t: end-to-end tests, ARM agent under qemu"
  start=$SECONDS
  SPOOLCAST_TEST_AGENT_BIN=$bin SPOOLCAST_TEST_AGENT_RUNNER=${runner[$arch]} \
    cargo test -p spoolcast-agent --test printing -- --exact "${e2e_tests[@]}"
  timings+=("$t end-to-end tests: $((SECONDS - start)) s")
done

for line in "${timings[@]}"; do
  log "$line"
done
