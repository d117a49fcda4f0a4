#!/usr/bin/env bash
# Release binaries of spoolcast-agent for devices, and of spoolcast-hub for
# 64-bit ARM servers:
#
#   cross/build.sh [aarch64|armv7|x86_64|all|hub-aarch64]     (default: all)
#
# writes dist/<package>-<target triple> for each:
#   aarch64      spoolcast-agent  aarch64-unknown-linux-gnu      Raspberry Pi 3/4/5 and other 64-bit ARM, 64-bit OS
#   armv7        spoolcast-agent  armv7-unknown-linux-gnueabihf  Raspberry Pi 2/3/4 with a 32-bit OS (armhf)
#   x86_64       spoolcast-agent  x86_64-unknown-linux-gnu       PCs, thin clients
#   all          the agent's three above (what CI builds)
#   hub-aarch64  spoolcast-hub    aarch64-unknown-linux-gnu      ARM servers, a Pi 4/5 running the hub
#
# The hub is opt-in, not in `all`: after the agent's aarch64 build it still
# costs about 12 min of CPU (measured: 11m38s user; 25 min wall on 2 shared
# cores), mostly its own dependency tree (axum, sqlx, rumqttd) and one more
# fat-LTO link, which is more than CI's budget for it. aarch64 only: the
# hub runs on servers, not on 32-bit Pis, and on x86_64 the host's own build
# (packaging/build-deb.sh) is the release. Each package is built on its own
# (`-p`), never together: cargo would unify their dependencies' features,
# and the size-budgeted agent binary would no longer be the one built alone.
#
# Uses Debian's compiler (/usr/bin/cargo + /usr/bin/rustc from rustc-web,
# installed with the ARM standard libraries by cross/setup-toolchain.sh) for
# all of them, so the binaries come from one toolchain and build scripts and
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

builds() { # "package triple" lines for a command-line choice
  case $1 in
    aarch64) echo spoolcast-agent aarch64-unknown-linux-gnu ;;
    armv7) echo spoolcast-agent armv7-unknown-linux-gnueabihf ;;
    x86_64) echo spoolcast-agent x86_64-unknown-linux-gnu ;;
    all) for choice in aarch64 armv7 x86_64; do builds "$choice"; done ;;
    hub-aarch64) echo spoolcast-hub aarch64-unknown-linux-gnu ;;
    *)
      echo "usage: cross/build.sh [aarch64|armv7|x86_64|all|hub-aarch64]" >&2
      exit 2
      ;;
  esac
}

if ! command -v "$cargo_bin" >/dev/null || ! command -v "$RUSTC" >/dev/null; then
  echo "cross/build.sh: $cargo_bin or $RUSTC missing; run cross/setup-toolchain.sh" >&2
  exit 1
fi

plan=$(builds "${1:-all}")
mkdir -p dist
while read -r package triple; do
  echo "cross/build.sh: building $package for $triple with $("$RUSTC" --version)" >&2
  start=$SECONDS
  "$cargo_bin" build --release --target "$triple" -p "$package"
  cp "$CARGO_TARGET_DIR/$triple/release/$package" "dist/$package-$triple"
  size=$(stat -c %s "dist/$package-$triple")
  echo "cross/build.sh: dist/$package-$triple: $size bytes ($((size / 1024)) KiB), $((SECONDS - start)) s" >&2
done <<<"$plan"
