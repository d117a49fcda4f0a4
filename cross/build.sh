#!/usr/bin/env bash
# Release binaries of spoolcast-agent for devices:
#
#   cross/build.sh [aarch64|armv7|x86_64|all]     (default: all)
#
# writes dist/spoolcast-agent-<target triple> for each:
#   aarch64  aarch64-unknown-linux-gnu      Raspberry Pi 3/4/5 and other 64-bit ARM, 64-bit OS
#   armv7    armv7-unknown-linux-gnueabihf  Raspberry Pi 2/3/4 with a 32-bit OS (armhf)
#   x86_64   x86_64-unknown-linux-gnu       PCs, thin clients
#
# Uses Debian's compiler (/usr/bin/cargo + /usr/bin/rustc from rustc-web,
# installed with the ARM standard libraries by cross/setup-toolchain.sh) for
# all three, so the binaries come from one toolchain and build scripts and
# proc macros are compiled once for all targets. Linkers and qemu runners
# come from .cargo/config.toml. Another toolchain with the targets installed
# (rustup) works too:
#   SPOOLCAST_CROSS_CARGO=cargo SPOOLCAST_CROSS_RUSTC=rustc cross/build.sh
#
# The build directory is target/cross (CARGO_TARGET_DIR overrides it), apart
# from the host's target/, so a host build and a cross build never wait for
# each other's lock or invalidate each other's artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_bin=${SPOOLCAST_CROSS_CARGO:-/usr/bin/cargo}
export RUSTC=${SPOOLCAST_CROSS_RUSTC:-/usr/bin/rustc}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/cross}

triples() {
  case $1 in
    aarch64) echo aarch64-unknown-linux-gnu ;;
    armv7) echo armv7-unknown-linux-gnueabihf ;;
    x86_64) echo x86_64-unknown-linux-gnu ;;
    all) echo aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf x86_64-unknown-linux-gnu ;;
    *)
      echo "usage: cross/build.sh [aarch64|armv7|x86_64|all]" >&2
      exit 2
      ;;
  esac
}

if ! command -v "$cargo_bin" >/dev/null || ! command -v "$RUSTC" >/dev/null; then
  echo "cross/build.sh: $cargo_bin or $RUSTC missing; run cross/setup-toolchain.sh" >&2
  exit 1
fi

mkdir -p dist
for triple in $(triples "${1:-all}"); do
  echo "cross/build.sh: building $triple with $("$RUSTC" --version)" >&2
  start=$SECONDS
  "$cargo_bin" build --release --target "$triple" -p spoolcast-agent
  cp "$CARGO_TARGET_DIR/$triple/release/spoolcast-agent" "dist/spoolcast-agent-$triple"
  size=$(stat -c %s "dist/spoolcast-agent-$triple")
  echo "cross/build.sh: dist/spoolcast-agent-$triple: $size bytes ($((size / 1024)) KiB), $((SECONDS - start)) s" >&2
done
