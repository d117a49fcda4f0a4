#!/usr/bin/env bash
# Builds the spoolcast-agent Debian package with cargo-deb (metadata:
# [package.metadata.deb] in the root Cargo.toml) and prints its path.
#
#   packaging/build-deb.sh
#       amd64 (this machine): cargo build --release, then package.
#   packaging/build-deb.sh --binary dist/spoolcast-agent-arm64 --arch arm64
#       package a binary built elsewhere (cross/build.sh), for arm64 or
#       armhf; nothing is compiled.
#
# Options: --binary PATH, --arch amd64|arm64|armhf (default: amd64, and only
# with --binary for the others), --out DIR (default: target/debian).
# Installs cargo-deb (pinned, ~4 min to compile) when it is missing.
#
# HUB: once hub/ has a daemon to ship, give hub/Cargo.toml its own
# [package.metadata.deb] (and systemd/spoolcast-hub.service) and add a
# --package option here that is passed to cargo deb as -p.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
declare -A triple=(
  [amd64]=x86_64-unknown-linux-gnu
  [arm64]=aarch64-unknown-linux-gnu
  [armhf]=armv7-unknown-linux-gnueabihf
)

binary=
arch=amd64
out=target/debian
while (($#)); do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--binary PATH --arch amd64|arm64|armhf] [--out DIR]" >&2; exit 2 ;;
  esac
done
if [[ -z ${triple[$arch]:-} ]]; then
  echo "build-deb: unknown --arch $arch (amd64, arm64 or armhf)" >&2
  exit 2
fi
if [[ -z $binary && $arch != amd64 ]]; then
  echo "build-deb: --arch $arch needs --binary (build it with cross/build.sh)" >&2
  exit 2
fi

if ! cargo deb --version 2>/dev/null | grep -q "^cargo-deb $CARGO_DEB_VERSION\$"; then
  echo "build-deb: installing cargo-deb $CARGO_DEB_VERSION" >&2
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" >&2
fi

mkdir -p "$out"
if [[ -z $binary ]]; then
  deb=$(cargo deb -p spoolcast-agent --locked --output "$out" | tail -n 1)
else
  # cargo-deb takes the binary from <target dir>/<triple>/release/. A private
  # target dir keeps the prebuilt binary away from cargo's own outputs.
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  install -D -m 0755 "$binary" "$stage/${triple[$arch]}/release/spoolcast-agent"
  # --no-strip: the binary is shipped exactly as it was built and tested.
  deb=$(CARGO_TARGET_DIR=$stage cargo deb -p spoolcast-agent --no-build --no-strip \
    --target "${triple[$arch]}" --output "$out" | tail -n 1)
fi
echo "$deb"
