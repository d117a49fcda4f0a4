#!/usr/bin/env bash
# Builds a spoolcast Debian package with cargo-deb and prints its path:
# spoolcast-agent ([package.metadata.deb] in the root Cargo.toml) or
# spoolcast-hub (in hub/Cargo.toml).
#
#   packaging/build-deb.sh [--package spoolcast-agent|spoolcast-hub]
#       amd64 (this machine): cargo build --release, then package.
#   packaging/build-deb.sh --binary dist/spoolcast-agent-aarch64-unknown-linux-gnu --arch arm64
#       package a binary built elsewhere (cross/build.sh), for arm64 or
#       armhf; nothing is compiled. Also for an amd64 binary already built
#       (packaging/test.sh builds both packages' binaries in one go).
#
# Options: --package (default spoolcast-agent), --binary PATH,
# --arch amd64|arm64|armhf (default: amd64, and only with --binary for the
# others; the hub has no armhf package), --out DIR (default: target/debian),
# --maintainer "Name <email>" (the Maintainer field: a vendor shipping the
# package puts its own support address there; the default in Cargo.toml is
# a placeholder of the project's, `.invalid` until it has a real one).
# Installs cargo-deb (pinned, ~4 min to compile) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
declare -A triple=(
  [amd64]=x86_64-unknown-linux-gnu
  [arm64]=aarch64-unknown-linux-gnu
  [armhf]=armv7-unknown-linux-gnueabihf
)
# The architectures each package is made for. The hub runs on servers:
# 64-bit only (cross/build.sh builds it for aarch64, not armv7).
declare -A arches=(
  [spoolcast-agent]="amd64 arm64 armhf"
  [spoolcast-hub]="amd64 arm64"
)

usage() {
  echo "usage: $0 [--package spoolcast-agent|spoolcast-hub] [--binary PATH --arch amd64|arm64|armhf] [--out DIR] [--maintainer 'Name <email>']" >&2
  exit 2
}
package=spoolcast-agent
binary=
arch=amd64
out=target/debian
overrides=()
while (($#)); do
  (($# >= 2)) || usage
  case $1 in
    --package) package=$2 ;;
    --binary) binary=$2 ;;
    --arch) arch=$2 ;;
    --out) out=$2 ;;
    --maintainer)
      [[ $2 =~ ^[^\<\>]+\ \<[^@\<\>\ ]+@[^@\<\>\ ]+\>$ ]] || {
        echo "build-deb: --maintainer must look like 'Name <address@example.com>'" >&2
        exit 2
      }
      overrides+=(--maintainer "$2")
      ;;
    *) usage ;;
  esac
  shift 2
done
if [[ -z ${arches[$package]:-} ]]; then
  echo "build-deb: unknown --package $package (spoolcast-agent or spoolcast-hub)" >&2
  exit 2
fi
if [[ " ${arches[$package]} " != *" $arch "* ]]; then
  echo "build-deb: no $arch package of $package (only ${arches[$package]})" >&2
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
  deb=$(cargo deb -p "$package" --locked --output "$out" "${overrides[@]}" | tail -n 1)
else
  # cargo-deb takes the binary from <target dir>/<triple>/release/. A private
  # target dir keeps the prebuilt binary away from cargo's own outputs.
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  install -D -m 0755 "$binary" "$stage/${triple[$arch]}/release/$package"
  # --no-strip: the binary is shipped exactly as it was built and tested.
  deb=$(CARGO_TARGET_DIR=$stage cargo deb -p "$package" --no-build --no-strip \
    --target "${triple[$arch]}" --output "$out" "${overrides[@]}" | tail -n 1)
fi
echo "$deb"
