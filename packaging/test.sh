#!/usr/bin/env bash
# Packaging checks, run by scripts/test after the host tests (so by CI):
#
# 1. the systemd unit: `systemd-analyze security --offline` exposure <= 2.0;
# 2. the amd64 .deb (packaging/build-deb.sh): contents and control fields;
# 3. installed for real: binary, unit (`systemd-analyze verify` clean),
#    conffile, system user, state dir; `--version`; the shipped placeholder
#    config is refused by `check`; a real config passes `check`, run as the
#    daemon's user, against a mosquitto and an ippeveprinter started here on
#    free ports;
# 4. purged: no file of the package, no config, no state left.
#
# Installs and purges a package, so it uses sudo when not root, and it
# refuses to run where spoolcast-agent is already installed. Works without systemd as PID 1 (a
# container): the unit checks are offline and the maintainer scripts skip
# systemctl then. SPOOLCAST_DEB=path skips the build and tests that .deb.
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

if dpkg-query -W -f='${Status}' spoolcast-agent 2>/dev/null | grep -q 'ok installed'; then
  fail "spoolcast-agent is installed on this machine; this test would purge it"
fi
if ! command -v systemd-analyze >/dev/null; then
  log "installing systemd (for systemd-analyze)"
  apt_get update
  apt_get install --no-install-recommends systemd
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -- "-$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# 1. The unit, offline. --threshold is in tenths: fail above 2.0.
unit=systemd/spoolcast-agent.service
exposure=$(systemd-analyze security --offline=yes --no-pager "$unit" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
systemd-analyze security --offline=yes --threshold=20 "$unit" >/dev/null ||
  fail "$unit: exposure $exposure is above 2.0"
log "unit exposure $exposure (limit 2.0)"

# 2. Build and inspect.
deb=${SPOOLCAST_DEB:-$(packaging/build-deb.sh)}
log "package $deb"
dpkg-deb -I "$deb"
dpkg-deb -c "$deb" | tee "$work/contents"
for path in ./usr/bin/spoolcast-agent ./usr/lib/systemd/system/spoolcast-agent.service \
  ./etc/spoolcast/agent.toml ./usr/share/doc/spoolcast-agent/copyright \
  ./usr/share/doc/spoolcast-agent/changelog.Debian.gz; do
  grep -q " $path\$" "$work/contents" || fail "$deb lacks $path"
done
dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/spoolcast/agent.toml "$work/control/conffiles" || fail "agent.toml is not a conffile"
[[ $(dpkg-deb -f "$deb" Architecture) == amd64 ]] || fail "not an amd64 package"
dpkg-deb -f "$deb" Depends | grep -q adduser || fail "Depends lacks adduser"
# Installing must never start an agent with the placeholder config (an
# upgrade only try-restarts one that runs).
if grep -Eq 'deb-systemd-invoke start|systemctl (--system )?start' "$work/control/postinst"; then
  fail "postinst starts the service"
fi

# 3. Install and try.
apt_get install "./${deb#./}"
[[ -x /usr/bin/spoolcast-agent ]] || fail "no /usr/bin/spoolcast-agent"
# ...nor enable one (deb-systemd-helper keeps the symlinks even without systemd).
[[ ! -e /etc/systemd/system/multi-user.target.wants/spoolcast-agent.service ]] ||
  fail "installing enabled the service"
getent passwd spoolcast >/dev/null || fail "no spoolcast user"
[[ $(stat -c %U:%a /var/lib/spoolcast) == spoolcast:700 ]] || fail "/var/lib/spoolcast is $(stat -c %U:%a /var/lib/spoolcast)"
verify=$(systemd-analyze verify /usr/lib/systemd/system/spoolcast-agent.service 2>&1) ||
  fail "systemd-analyze verify: $verify"
[[ -z $verify ]] || fail "systemd-analyze verify is not clean: $verify"
log "systemd-analyze verify: clean"
spoolcast-agent --version

# The shipped config is a placeholder: check refuses it, naming the key.
if out=$(spoolcast-agent -c /etc/spoolcast/agent.toml check 2>&1); then
  fail "check passed on the placeholder config: $out"
fi
grep -q 'agent.id' <<<"$out" || fail "check on the placeholder config did not name agent.id: $out"

# A real broker and printer on free loopback ports.
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
start() { # start NAME COMMAND...: in its own process group, log in $work/NAME.log
  local name=$1
  shift
  setsid "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
}
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
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/bus" DBUS_SESSION_BUS_ADDRESS= \
  start ippeveprinter ippeveprinter -n localhost -p "$ipp_port" -r off -f application/pdf test
wait_port "$mqtt_port"
wait_port "$ipp_port"

# The daemon's user must read it; the temp dir itself is 0700.
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

# 4. Purge: nothing of the package may stay.
dpkg -L spoolcast-agent >"$work/files"
apt_get purge spoolcast-agent
while read -r path; do
  if [[ -e $path && ! -d $path ]]; then
    fail "$path is still there after purge"
  fi
done <"$work/files"
for dir in /etc/spoolcast /var/lib/spoolcast /usr/share/doc/spoolcast-agent; do
  [[ ! -e $dir ]] || fail "$dir is still there after purge"
done
# Nor enable/mask links or deb-systemd-helper state.
left=$(find /etc/systemd /var/lib/systemd -name '*spoolcast*' 2>/dev/null)
[[ -z $left ]] || fail "left after purge: $left"
if dpkg-query -W -f='${Status}' spoolcast-agent 2>/dev/null | grep -q installed; then
  fail "dpkg still knows spoolcast-agent"
fi
# The spoolcast user stays by design (see packaging/debian/postrm).
log "ok"
