#!/usr/bin/env bash
# Packaging checks for both packages, spoolcast-agent and spoolcast-hub.
#
#   packaging/test.sh          (scripts/test runs it after the host tests)
#
# 1. each systemd unit: `systemd-analyze security --offline` exposure <= 2.0;
# 2. the amd64 .debs (packaging/build-deb.sh), both binaries built by one
#    `cargo build --release`: contents, control fields, conffile, binary
#    architecture, maintainer scripts that neither start nor enable;
# 3. each installed for real: binary, unit (`systemd-analyze verify` clean),
#    conffile, system user, state dir; `--version`. Then
#    - agent: the shipped placeholder config is refused by `check`; a real
#      config passes `check`, run as the daemon's user, against a mosquitto
#      and an ippeveprinter started here on free ports;
#    - hub: the generated document URL key (root:spoolcast-hub 0640);
#      `user add` as the daemon's user; `serve` as that user with the
#      shipped config (only its two ports moved to free ones) logs that user
#      in over HTTP, tells a NOTIFY_SOCKET READY=1, WATCHDOG=1 and, on
#      SIGTERM, STOPPING=1, and exits 0;
# 4. each purged: no file of the package, no config, no state left.
#
#   packaging/test.sh arm          (scripts/test runs it after cross/build.sh all)
#   packaging/test.sh hub-arm64    (after the opt-in cross/build.sh hub-aarch64)
#
# The ARM packages, from the binaries cross/build.sh left in dist/: the
# agent's arm64 and armhf, or the hub's arm64. Step 2 only: they cannot be
# installed here.
#
# Installs and purges packages, so it uses sudo when not root, and it
# refuses to run where either package is already installed. Works without
# systemd as PID 1 (a container): the unit checks are offline and the
# maintainer scripts skip systemctl then. SPOOLCAST_DEB=path (agent) and
# SPOOLCAST_HUB_DEB=path skip building that package and test the given one.
# Uses the peers scripts/setup installs (mosquitto, ippeveprinter, dbus,
# curl, python3).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "packaging/test: $*" >&2; }
fail() {
  log "FAIL: $*"
  exit 1
}
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi
# Other builds on the machine may hold the dpkg lock; wait for it, do not
# fail (plain dpkg -i cannot wait).
apt_get() {
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y "$@"
}

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    "${sudo[@]}" kill -- "-$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# e_machine of the ELF header (offset 18, little-endian) per Debian arch:
# a package must carry a binary for the machine it claims.
declare -A elf_machine=([amd64]=62 [arm64]=183 [armhf]=40)

# inspect_deb DEB PACKAGE ARCH: what every package of ours must hold, where
# PACKAGE is also the binary's and the unit's name and its conffile is
# /etc/spoolcast/<PACKAGE without "spoolcast-">.toml.
inspect_deb() {
  local deb=$1 package=$2 arch=$3
  local dir=$work/$package-$arch conffile=/etc/spoolcast/${package#spoolcast-}.toml path
  log "inspecting $deb"
  mkdir "$dir"
  dpkg-deb -I "$deb"
  dpkg-deb -c "$deb" | tee "$dir/contents"
  for path in "/usr/bin/$package" "/usr/lib/systemd/system/$package.service" "$conffile" \
    "/usr/share/doc/$package/copyright" "/usr/share/doc/$package/changelog.Debian.gz"; do
    grep -q " \.$path\$" "$dir/contents" || fail "$deb lacks $path"
  done
  [[ $(dpkg-deb -f "$deb" Package) == "$package" ]] || fail "$deb is not $package"
  [[ $(dpkg-deb -f "$deb" Architecture) == "$arch" ]] || fail "$deb is not an $arch package"
  dpkg-deb -f "$deb" Depends | grep -q adduser || fail "$deb: Depends lacks adduser"
  dpkg-deb -e "$deb" "$dir/control"
  grep -qx "$conffile" "$dir/control/conffiles" || fail "$deb: $conffile is not a conffile"
  # Installing must never start or enable a daemon (an upgrade only
  # try-restarts one that runs).
  if grep -Eq 'deb-systemd-invoke start|systemctl (--system )?start' "$dir/control/postinst"; then
    fail "$deb: postinst starts the service"
  fi
  dpkg-deb -x "$deb" "$dir/root"
  [[ $(od -An -tu2 -j18 -N2 "$dir/root/usr/bin/$package" | tr -d ' ') == "${elf_machine[$arch]}" ]] ||
    fail "$deb: /usr/bin/$package is not an $arch binary"
}

# "package arch triple" of the ARM packages each mode checks.
declare -A arm_builds=(
  [arm]="spoolcast-agent arm64 aarch64-unknown-linux-gnu
spoolcast-agent armhf armv7-unknown-linux-gnueabihf"
  [hub-arm64]="spoolcast-hub arm64 aarch64-unknown-linux-gnu"
)
if (($#)); then
  if [[ $# -ne 1 || -z ${arm_builds[$1]:-} ]]; then
    echo "usage: $0 [arm|hub-arm64]" >&2
    exit 2
  fi
  while read -r package arch triple; do
    binary=dist/$package-$triple
    [[ -x $binary ]] || fail "no $binary: build it with cross/build.sh first"
    deb=$(packaging/build-deb.sh --package "$package" --binary "$binary" --arch "$arch" --out "$work/debs")
    inspect_deb "$deb" "$package" "$arch"
  done <<<"${arm_builds[$1]}"
  # A vendor's own Maintainer (README, "Bundling the agent"), on the first.
  read -r package arch triple <<<"${arm_builds[$1]}"
  binary=dist/$package-$triple
  deb=$(packaging/build-deb.sh --package "$package" --binary "$binary" --arch "$arch" \
    --out "$work/vendor" --maintainer "ACME Printers <support@acme.example>")
  [[ $(dpkg-deb -f "$deb" Maintainer) == "ACME Printers <support@acme.example>" ]] ||
    fail "--maintainer did not reach the package: $(dpkg-deb -f "$deb" Maintainer)"
  log "ok"
  exit 0
fi

for package in spoolcast-agent spoolcast-hub; do
  if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed'; then
    fail "$package is installed on this machine; this test would purge it"
  fi
done
if ! command -v systemd-analyze >/dev/null; then
  log "installing systemd (for systemd-analyze)"
  apt_get update
  apt_get install --no-install-recommends systemd
fi

# install_deb DEB PACKAGE USER: installs it and checks what every package
# sets up: the binary, the daemon's user and its state dir /var/lib/USER,
# the unit (verified, not enabled).
install_deb() {
  local deb=$1 package=$2 user=$3 verify
  apt_get install "$(realpath "$deb")"
  [[ -x /usr/bin/$package ]] || fail "no /usr/bin/$package"
  # deb-systemd-helper makes the enable symlinks even without systemd.
  [[ ! -e /etc/systemd/system/multi-user.target.wants/$package.service ]] ||
    fail "installing enabled $package.service"
  getent passwd "$user" >/dev/null || fail "no $user user"
  [[ $(stat -c %U:%a "/var/lib/$user") == "$user:700" ]] ||
    fail "/var/lib/$user is $(stat -c %U:%a "/var/lib/$user")"
  verify=$(systemd-analyze verify "/usr/lib/systemd/system/$package.service" 2>&1) ||
    fail "systemd-analyze verify $package.service: $verify"
  [[ -z $verify ]] || fail "systemd-analyze verify $package.service is not clean: $verify"
  log "systemd-analyze verify $package.service: clean"
  "$package" --version
}

# purge_deb PACKAGE USER: purges it; nothing of it may stay.
purge_deb() {
  local package=$1 user=$2 path dir left
  dpkg -L "$package" >"$work/$package.files"
  apt_get purge "$package"
  while read -r path; do
    if [[ -e $path && ! -d $path ]]; then
      fail "$path is still there after purging $package"
    fi
  done <"$work/$package.files"
  for dir in /etc/spoolcast "/var/lib/$user" "/usr/share/doc/$package"; do
    [[ ! -e $dir ]] || fail "$dir is still there after purging $package"
  done
  # Nor enable/mask links or deb-systemd-helper state.
  left=$(find /etc/systemd /var/lib/systemd -name "*$package*" 2>/dev/null)
  [[ -z $left ]] || fail "left after purging $package: $left"
  if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q installed; then
    fail "dpkg still knows $package"
  fi
  # The system user stays by design (see the package's postrm).
  log "$package purged"
}

free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  fail "nothing listens on port $1"
}
start() { # start NAME COMMAND...: in its own session, log in $work/NAME.log
  local name=$1
  shift
  setsid "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
}

# 1. The units, offline. --threshold is in tenths: fail above 2.0.
for unit in systemd/spoolcast-agent.service systemd/spoolcast-hub.service; do
  exposure=$(systemd-analyze security --offline=yes --no-pager "$unit" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  systemd-analyze security --offline=yes --threshold=20 "$unit" >/dev/null ||
    fail "$unit: exposure $exposure is above 2.0"
  log "$unit: exposure $exposure (limit 2.0)"
done

# 2. Build and inspect. One cargo build for both binaries: their shared
# dependencies (most of the hub's) are compiled once, not once per package.
agent_deb=${SPOOLCAST_DEB:-}
hub_deb=${SPOOLCAST_HUB_DEB:-}
build=()
[[ -n $agent_deb ]] || build+=(-p spoolcast-agent)
[[ -n $hub_deb ]] || build+=(-p spoolcast-hub)
if ((${#build[@]})); then
  start=$SECONDS
  cargo build --release --locked "${build[@]}"
  log "release build (${build[*]}): $((SECONDS - start)) s"
  target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  [[ -n $agent_deb ]] ||
    agent_deb=$(packaging/build-deb.sh --package spoolcast-agent --binary "$target_dir/release/spoolcast-agent")
  [[ -n $hub_deb ]] ||
    hub_deb=$(packaging/build-deb.sh --package spoolcast-hub --binary "$target_dir/release/spoolcast-hub")
fi
inspect_deb "$agent_deb" spoolcast-agent amd64
inspect_deb "$hub_deb" spoolcast-hub amd64

# 3a. The agent, installed.
install_deb "$agent_deb" spoolcast-agent spoolcast

# The shipped config is a placeholder: check refuses it, naming the key.
if out=$(spoolcast-agent -c /etc/spoolcast/agent.toml check 2>&1); then
  fail "check passed on the placeholder config: $out"
fi
grep -q 'agent.id' <<<"$out" || fail "check on the placeholder config did not name agent.id: $out"

# A real broker and printer on free loopback ports.
mqtt_port=$(free_port)
# `user root`: as root mosquitto would switch to user mosquitto, which cannot
# read the 0700 temp dir. Not root, the option is ignored.
cat >"$work/mosquitto.conf" <<EOF
listener $mqtt_port 127.0.0.1
allow_anonymous true
user root
EOF
start mosquitto mosquitto -c "$work/mosquitto.conf"
# ippeveprinter needs a bus to reach Avahi through, even with -r off.
start dbus dbus-daemon --session --nofork --nopidfile --address="unix:path=$work/bus"
for _ in $(seq 100); do [[ -S $work/bus ]] && break; sleep 0.1; done
ipp_port=$(free_port)
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/bus" DBUS_SESSION_BUS_ADDRESS='' \
  start ippeveprinter ippeveprinter -n localhost -p "$ipp_port" -r off -f application/pdf test
wait_port "$mqtt_port"
wait_port "$ipp_port"

# The daemons' users must read what is in here; the temp dir itself is 0700.
mkdir -m 0755 "$work/etc"
cat >"$work/etc/agent.toml" <<EOF
[agent]
id = "packaging-test"

[mqtt]
url = "mqtt://127.0.0.1:$mqtt_port"

[[printer]]
id = "office"
uri = "ipp://127.0.0.1:$ipp_port/ipp/print"
EOF
chmod 0644 "$work/etc/agent.toml"
chmod 0711 "$work"
"${sudo[@]}" runuser -u spoolcast -- spoolcast-agent -c "$work/etc/agent.toml" check ||
  fail "check failed against a real broker and printer (logs in $work)"

# 4a.
purge_deb spoolcast-agent spoolcast

# 3b. The hub, installed.
install_deb "$hub_deb" spoolcast-hub spoolcast-hub
key=/etc/spoolcast/hub-url.key
[[ $(stat -c %U:%G:%a "$key") == root:spoolcast-hub:640 ]] ||
  fail "$key is $(stat -c %U:%G:%a "$key"), not root:spoolcast-hub 0640"
(($(stat -c %s "$key") >= 32)) || fail "$key holds less than 32 bytes"

echo packaging-test-password |
  "${sudo[@]}" runuser -u spoolcast-hub -- spoolcast-hub -c /etc/spoolcast/hub.toml user add alice ||
  fail "user add as spoolcast-hub failed"

# serve with the shipped config as its user, on free ports (the defaults,
# 8080 and 1883, may be taken here; 1883 is when mosquitto's own service
# runs). A datagram socket stands in for systemd's NOTIFY_SOCKET and, like
# systemd, asks the kernel who sent each message (NotifyAccess=main accepts
# only the main process); the watchdog period is short so a ping comes
# within the test.
http_port=$(free_port)
broker_port=$(free_port)
mkdir -m 0755 "$work/notify"
start notify python3 -u -c '
import os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
while True:
    data, ancillary, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = next(struct.unpack("i", d[:4])[0] for level, kind, d in ancillary
               if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS)
    print(pid, data.decode().replace("\n", " "))
' "$work/notify/socket"
for _ in $(seq 100); do [[ -S $work/notify/socket ]] && break; sleep 0.1; done
start hub "${sudo[@]}" runuser -u spoolcast-hub -- env NOTIFY_SOCKET="$work/notify/socket" \
  WATCHDOG_USEC=2000000 SPOOLCAST_HUB_HUB__LISTEN="127.0.0.1:$http_port" \
  SPOOLCAST_HUB_MQTT__EMBEDDED_BROKER="127.0.0.1:$broker_port" \
  spoolcast-hub -c /etc/spoolcast/hub.toml serve
hub_session=${pids[-1]}
wait_port "$http_port"
login=$(curl -sS --fail-with-body -H 'Content-Type: application/json' \
  -d '{"username": "alice", "password": "packaging-test-password", "device": "packaging-test"}' \
  "http://127.0.0.1:$http_port/api/login") || fail "login failed: $login (log: $(cat "$work/hub.log"))"
token=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' <<<"$login")
me=$(curl -sS --fail-with-body -H "Authorization: Bearer $token" "http://127.0.0.1:$http_port/api/me") ||
  fail "GET /api/me failed: $me"
grep -q '"name":"alice"' <<<"$me" || fail "GET /api/me is not alice: $me"
for _ in $(seq 100); do grep -q WATCHDOG=1 "$work/notify.log" && break; sleep 0.1; done

# SIGTERM to the process that said READY=1, the hub itself (runuser, its
# parent, passes its exit status on), as systemd would send it.
hub_pid=$(sed -n 's/^\([0-9]*\) READY=1.*/\1/p' "$work/notify.log")
[[ -n $hub_pid ]] || fail "serve did not send READY=1: $(cat "$work/notify.log") (log: $(cat "$work/hub.log"))"
sender="$(cat "/proc/$hub_pid/comm") as $(stat -c %U "/proc/$hub_pid")"
[[ $sender == "spoolcast-hub as spoolcast-hub" ]] || fail "READY=1 came from $sender"
"${sudo[@]}" kill -TERM "$hub_pid"
status=0
wait "$hub_session" || status=$?
((status == 0)) || fail "serve exited $status after SIGTERM (log: $(cat "$work/hub.log"))"
for message in "READY=1 STATUS=listening on 127.0.0.1:$http_port" WATCHDOG=1 "STOPPING=1 STATUS=shutting down"; do
  grep -qx "$hub_pid $message" "$work/notify.log" ||
    fail "serve did not send $message from its main process: $(cat "$work/notify.log")"
done
log "serve as spoolcast-hub: login over HTTP, READY, WATCHDOG, STOPPING, exit 0 on SIGTERM"

# 4b.
purge_deb spoolcast-hub spoolcast-hub
log "ok"
