#!/usr/bin/env bash
# Installs what ARM builds of spoolcast-agent need, from Debian 12 packages
# only (no rustup download, no Docker): Debian's own Rust compiler
# (rustc-web + cargo-web), its standard library for arm64 and armhf, the
# cross linkers with the target glibc, and qemu-user-static to run the ARM
# binaries and their tests on this x86_64 machine.
#
# Idempotent: installs only what is missing, and re-fetches a target's
# standard library only when the installed rustc-web version changed (a
# security update replaces it; the library must be the same version as the
# compiler, byte for byte).
#
# Nothing here pins a Debian version string; the compiler version is read
# from dpkg and everything else follows it.
#
# It does not touch the rustup toolchain (~/.cargo/bin), which stays the
# host's default `cargo`; Debian's lands in /usr/bin and cross/build.sh calls
# it by path. Other ways to get the targets (rustup, cross/Docker):
# README.md, "ARM builds".
set -euo pipefail

# Debian targets (dpkg architecture) and their Rust target triples.
declare -A rust_target=(
  [arm64]=aarch64-unknown-linux-gnu
  [armhf]=armv7-unknown-linux-gnueabihf
)
# Package mirror for the standard-library downloads; the host's own apt
# sources are used for everything installed with apt-get install.
mirror=${SPOOLCAST_DEBIAN_MIRROR:-https://deb.debian.org}

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi
log() { echo "cross/setup-toolchain: $*" >&2; }
apt_get() {
  # Wait for the dpkg lock rather than fail: other builds on this machine
  # may be installing packages at the same moment.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=600 "$@"
}
installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# shellcheck source=/dev/null
. /etc/os-release
if [[ ${ID:-} != debian ]]; then
  log "this script uses Debian's rustc-web packages and supports Debian 12 only;"
  log "elsewhere use rustup or cross (README.md, \"ARM builds\")"
  exit 1
fi
codename=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}

# 1. The security archive. Plain bookworm has rustc-web 1.85, but the
#    workspace needs Rust >= 1.88 (rust-version); the security archive
#    (bookworm-security) carries the newer rustc-web. Add it only if no apt
#    source mentions it yet.
need_update=0
if ! grep -rqs -- "${codename}-security" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  log "adding ${codename}-security to the apt sources"
  "${sudo[@]}" tee /etc/apt/sources.list.d/debian-security.sources >/dev/null <<EOF
Types: deb
URIs: http://deb.debian.org/debian-security
Suites: ${codename}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  need_update=1
fi

# 2. Host packages: Debian's compiler and cargo (/usr/bin/rustc,
#    /usr/bin/cargo), cross gcc as linker for each target with that target's
#    glibc (libc6-dev-*-cross lands in /usr/<triple>/, which is also the
#    sysroot qemu needs: `-L /usr/aarch64-linux-gnu`), and qemu-user-static
#    (registers binfmt handlers too, but .cargo/config.toml calls qemu
#    explicitly so nothing depends on binfmt_misc being available).
packages=(
  rustc-web cargo-web
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
  qemu-user-static
  curl ca-certificates xz-utils
)
missing=()
for pkg in "${packages[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  if ((need_update)) || ! apt-cache show rustc-web >/dev/null 2>&1; then
    apt_get update
  fi
  apt_get install -y --no-install-recommends "${missing[@]}"
fi

version=$(dpkg-query -W -f='${Version}' rustc-web)
log "Debian rustc-web $version ($(/usr/bin/rustc --version))"

# 3. The standard library for each target: package libstd-rust-web-dev of
#    the target architecture, of exactly the installed compiler's version
#    (rustc refuses rlibs built by another compiler). It is not installed
#    as a foreign-architecture package (that would need the armhf/arm64
#    variants of half the system); the .deb is only unpacked and its
#    usr/lib/rustlib/<target> copied next to the host's in /usr/lib/rustlib.
#
#    Download: `apt-get download` with a private apt state under $work
#    (own sources, own index lists, one architecture at a time), so the
#    machine's apt configuration is left alone: no `dpkg --add-architecture`,
#    no foreign indexes in everybody's `apt-get update`. That matters because
#    a foreign index can be broken on the mirror (the armhf index of
#    bookworm-security was: "File has unexpected size"), and apt then drops
#    the whole suite, making every later `apt-get update` on the machine
#    fail. When apt cannot find the version (such a broken index), the .deb
#    is fetched from its pool path over https instead and checked to be the
#    right package, version and architecture before use.
sysroot=$(/usr/bin/rustc --print sysroot)
work=$(mktemp -d /tmp/spoolcast-cross-setup.XXXXXX)
trap 'rm -rf "$work"' EXIT

fetch_with_apt() {
  local arch=$1 state="$work/apt-$1"
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/parts"
  cat >"$state/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian ${codename} main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security ${codename}-security main
EOF
  local opts=(
    -o "Dir::Etc::SourceList=$state/sources.list"
    -o "Dir::Etc::SourceParts=$state/parts"
    -o "Dir::State::Lists=$state/lists"
    -o "Dir::Cache=$state/cache"
    -o "APT::Architectures::=$arch"
    -o "Acquire::Languages=none"
    -o "Debug::NoLocking=1"
  )
  # A broken index makes `update` exit non-zero; `download` then tells
  # whether the version we need is still known.
  apt-get "${opts[@]}" update >"$state/update.log" 2>&1 || true
  (cd "$work" && apt-get "${opts[@]}" download "libstd-rust-web-dev:$arch=$version") \
    >"$state/download.log" 2>&1
}

fetch_from_pool() {
  local arch=$1
  # Pool file names carry the version without its epoch.
  local file="libstd-rust-web-dev_${version#*:}_${arch}.deb"
  local url
  for url in \
    "$mirror/debian-security/pool/updates/main/r/rustc-web/$file" \
    "$mirror/debian/pool/main/r/rustc-web/$file"; do
    if curl -fsSL --retry 3 -o "$work/$file" "$url"; then
      log "fetched $url"
      return 0
    fi
  done
  return 1
}

for arch in arm64 armhf; do
  target=${rust_target[$arch]}
  dest="$sysroot/lib/rustlib/$target"
  stamp="$dest/.debian-libstd-version"
  if [[ -f $stamp && $(<"$stamp") == "$version" ]]; then
    log "$target: standard library $version already installed"
    continue
  fi
  log "$target: fetching libstd-rust-web-dev:$arch=$version"
  if ! fetch_with_apt "$arch"; then
    log "$target: apt could not download it ($(tail -n1 "$work/apt-$arch/download.log")); trying the pool"
    fetch_from_pool "$arch" || {
      log "$target: libstd-rust-web-dev $version for $arch not found"
      exit 1
    }
  fi
  deb=$(ls "$work"/libstd-rust-web-dev_*_"$arch".deb)
  # The pool fallback is not covered by apt's signed index: at least make
  # sure it is the package, version and architecture we asked for.
  got="$(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) $(dpkg-deb -f "$deb" Architecture)"
  if [[ $got != "libstd-rust-web-dev $version $arch" ]]; then
    log "$target: $deb is \"$got\", expected libstd-rust-web-dev $version $arch"
    exit 1
  fi
  dpkg -x "$deb" "$work/x-$arch"
  src="$work/x-$arch/usr/lib/rustlib/$target"
  [[ -d $src/lib ]] || {
    log "$target: $deb has no usr/lib/rustlib/$target/lib"
    exit 1
  }
  # Replace, never merge: rlibs of an older version left beside the new
  # ones would make rustc pick a mismatching crate.
  "${sudo[@]}" rm -rf "$dest"
  "${sudo[@]}" cp -a "$src" "$dest"
  echo "$version" | "${sudo[@]}" tee "$stamp" >/dev/null
  log "$target: installed into $dest"
done

log "ready: $(/usr/bin/rustc --version), targets ${rust_target[*]}"
