#!/usr/bin/env bash
# Runs spoolcast-agent.service and spoolcast-hub.service under a real
# systemd as PID 1, on a machine whose own PID 1 is not systemd (a
# container or VM without an init):
#
#   systemd/test-under-systemd.sh
#
# packaging/test.sh checks the units offline only; this boots
# /lib/systemd/systemd as PID 1 of private PID, mount, UTS, IPC, network
# and cgroup namespaces, installs both as their packages' postinst scripts
# do, and checks what only a live systemd shows. For the agent:
#
# 1. Type=notify: the unit stays "activating" until the agent sends
#    READY=1, which it does after its first broker attempt fails (a
#    mosquitto held with SIGSTOP accepts TCP but never answers), then
#    reports "connected to broker" once the broker answers;
# 2. the sandbox applies: runs as `spoolcast`, NoNewPrivs, a seccomp
#    filter, no capabilities, /, /home and /etc/spoolcast read-only, the
#    StateDirectory writable, `systemd-analyze security` (live) at most
#    2.0;
# 3. the watchdog (lowered to 5 s by systemd/test/, see there) keeps a
#    healthy agent alive for over two periods, and kills and restarts one
#    that stops pinging (SIGSTOP), with result `watchdog`;
# 4. `systemctl stop` is graceful (the agent logs "agent stopped", exits
#    0, and its retained availability turns "offline"), and `systemctl
#    restart` brings up a new process that connects again.
#
# For the hub, with the shipped hub.toml pointed at the test's mosquitto
# (its embedded broker would take the same port) and a user added the
# documented way (`spoolcast-hub user add` as spoolcast-hub):
#
# 5. `systemctl start` returns once it sent READY=1, and by then its HTTP
#    port answers;
# 6. the same sandbox checks as the agent's, as spoolcast-hub;
# 7. a login over HTTP and an authenticated request work, which is what
#    proves the syscall filter, MemoryDenyWriteExecute= and PrivateUsers=
#    leave argon2, SQLite, the MQTT client and tokio alone; the hub lists
#    the agent's printer, online, from the shared broker;
# 8. `systemctl stop` is graceful ("hub stopped", exit 0).
#
# Why it leaves the machine as it was: the container's root is an overlay
# on the host's / whose upper layer is a tmpfs inside the private mount
# namespace, so every file written in there (unit, user, config, journal)
# vanishes with the namespace; /proc/sys and /sys are read-only in there,
# so systemd cannot change a kernel tunable; its capability bounding set
# lacks module loading, raw I/O, clock, audit and syslog control; the
# network namespace has only its own loopback, so nothing listens on the
# host's ports; and the cgroup it manages is one sub-cgroup this script
# creates and removes. Teardown powers the container off (systemd's own
# shutdown), and kills what is left by PID if that fails.
#
# Needs root, cgroup2 (a hybrid host's /sys/fs/cgroup/unified is enough)
# and no systemd as the host's PID 1 (there, run the unit directly).
# Uses target/release/spoolcast-{agent,hub}, building one first if absent.
set -euo pipefail

readonly AGENT_ID=systemd-test
# Every port is free in the container's own network namespace.
readonly BROKER_PORT=1883
# The shipped hub.toml's HTTP port.
readonly HUB_URL=http://127.0.0.1:8080
readonly HUB_USER=systemd-test
readonly WATCHDOG_SEC=5
readonly BOOT_TIMEOUT=60

log() { echo "test-under-systemd: $*" >&2; }
fail() {
  log "FAIL: $*"
  exit 1
}

# ---------------------------------------------------------------------------
# Inside: PID 1 of the new namespaces, still on the host's root. Builds the
# container's root and execs systemd. $1: the host-side work dir.
boot() {
  local work=$1 root=$1/root layers=$1/layers
  mount -t tmpfs -o mode=0755 spoolcast-layers "$layers"
  mkdir "$layers/upper" "$layers/work"
  mount -t overlay spoolcast-root -o "lowerdir=/,upperdir=$layers/upper,workdir=$layers/work" "$root"

  mount -t proc proc "$root/proc"
  # systemd's condition for udev, sysctl and binfmt is a writable /sys or
  # /proc/sys; read-only, they are skipped and no tunable can change.
  mount --bind "$root/proc/sys" "$root/proc/sys"
  mount -o remount,bind,ro "$root/proc/sys"
  if [[ -e $root/proc/sysrq-trigger ]]; then
    mount --bind "$root/proc/sysrq-trigger" "$root/proc/sysrq-trigger"
    mount -o remount,bind,ro "$root/proc/sysrq-trigger"
  fi
  mount -t sysfs -o ro sysfs "$root/sys"
  # The cgroup namespace's root is the sub-cgroup made for this run.
  mount -t cgroup2 cgroup2 "$root/sys/fs/cgroup"

  # A /dev of its own: the basic nodes, private ptys, and a file as the
  # console so systemd's boot messages are kept for a failure report.
  mount -t tmpfs -o mode=0755,nosuid spoolcast-dev "$root/dev"
  local node
  for node in null zero full random urandom tty; do
    touch "$root/dev/$node"
    mount --bind "/dev/$node" "$root/dev/$node"
  done
  touch "$root/dev/console"
  mount --bind "$work/console.log" "$root/dev/console"
  mkdir "$root/dev/pts" "$root/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
  ln -s pts/ptmx "$root/dev/ptmx"
  mount -t tmpfs -o mode=1777,nosuid,nodev spoolcast-shm "$root/dev/shm"
  ln -s /proc/self/fd "$root/dev/fd"
  ln -s /proc/self/fd/0 "$root/dev/stdin"
  ln -s /proc/self/fd/1 "$root/dev/stdout"
  ln -s /proc/self/fd/2 "$root/dev/stderr"
  mount -t tmpfs -o mode=0755,nosuid,nodev spoolcast-run "$root/run"
  mount -t tmpfs -o mode=1777,nosuid,nodev spoolcast-tmp "$root/tmp"

  install_spoolcast "$work" "$root"

  cd "$root"
  mkdir .host
  pivot_root . .host
  cd /
  umount -l /.host
  rmdir /.host
  # Capabilities whose effect reaches past the namespaces leave the
  # bounding set (as with nspawn): kernel modules, raw I/O, the clock,
  # audit rules, the kernel log.
  exec env -i container=spoolcast-test TERM=dumb \
    setpriv --bounding-set=-sys_module,-sys_rawio,-sys_time,-syslog,-audit_control,-audit_read,-mac_admin,-mac_override,-wake_alarm,-block_suspend,-sys_pacct,-perfmon \
    /lib/systemd/systemd --unit=spoolcast-test.target --show-status=no
}

# What the Debian packages install, plus the test's broker and target, all
# written into the overlay (so into the namespace's tmpfs).
install_spoolcast() {
  local work=$1 root=$2
  # Only what this test starts: no host service (cups, postgres, the
  # host's mosquitto...) is pulled in by an enabled .wants link.
  rm -rf "$root"/etc/systemd/system/*.wants
  echo "# spoolcast systemd test: nothing to mount" >"$root/etc/fstab"
  echo spoolcast-test >"$root/etc/hostname"
  # Its own machine ID, so its journal is not mistaken for the host's.
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$root/etc/machine-id"
  echo >>"$root/etc/machine-id"

  local name
  install -d -m 0755 "$root/etc/spoolcast"
  for name in spoolcast-agent spoolcast-hub; do
    install -m 0755 "$work/$name/bin" "$root/usr/bin/$name"
    install -m 0644 "$work/$name/unit" "$root/usr/lib/systemd/system/$name.service"
    mkdir -p "$root/etc/systemd/system/$name.service.d"
    cp "$work/$name"/dropins/*.conf "$root/etc/systemd/system/$name.service.d/"
    # The package's own postinst (its #DEBHELPER# line is a comment): the
    # user, the state directory and, for the hub, its URL-signing key.
    chroot "$root" sh -s configure <"$work/$name/postinst"
  done
  install -m 0644 "$work/spoolcast-agent/config" "$root/etc/spoolcast/agent.toml"
  install -m 0644 "$work/spoolcast-hub/config" "$root/etc/spoolcast/hub.toml"
  install -d -m 0755 "$root/etc/spoolcast-test"
  install -m 0644 "$work/mosquitto.conf" "$root/etc/spoolcast-test/mosquitto.conf"
  cat >"$root/etc/systemd/system/spoolcast-test.target" <<'EOF'
[Unit]
Description=spoolcast systemd test
Requires=basic.target
After=basic.target
AllowIsolate=yes
EOF
  cat >"$root/etc/systemd/system/spoolcast-test-broker.service" <<'EOF'
[Unit]
Description=mosquitto for the spoolcast systemd test

[Service]
ExecStart=/usr/sbin/mosquitto -c /etc/spoolcast-test/mosquitto.conf
EOF
}

if [[ ${1:-} == --boot ]]; then
  boot "$2"
fi

# ---------------------------------------------------------------------------
# Outside.
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || fail "needs root (namespaces, mounts, a cgroup)"
if [[ $(readlink /proc/1/exe 2>/dev/null) == */systemd ]]; then
  fail "this machine runs systemd; install the unit and test it there instead"
fi
for tool in /lib/systemd/systemd unshare nsenter setpriv pivot_root runuser /usr/sbin/mosquitto mosquitto_sub adduser curl jq; do
  command -v "$tool" >/dev/null || fail "$tool is missing (Debian: systemd, util-linux, mosquitto, mosquitto-clients, adduser, curl, jq)"
done

# The cgroup2 hierarchy: the whole of /sys/fs/cgroup, or a hybrid host's
# unified/ beside the v1 controllers (systemd needs no controller here).
if [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]]; then
  cgroot=/sys/fs/cgroup
elif [[ $(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null) == cgroup2fs ]]; then
  cgroot=/sys/fs/cgroup/unified
else
  fail "no cgroup2 hierarchy mounted"
fi

for name in spoolcast-agent spoolcast-hub; do
  if [[ ! -x target/release/$name ]]; then
    log "building target/release/$name"
    cargo build --release -p "$name"
  fi
done

work=$(mktemp -d /tmp/spoolcast-systemd.XXXXXX)
cgroup=$cgroot$(sed -n 's/^0:://p' /proc/self/cgroup)
cgroup=${cgroup%/}/spoolcast-systemd-test.$$
launcher=
pid1=
cleanup() {
  local status=$?
  if ((status != 0)) && [[ -n $pid1 ]] && declare -F inside >/dev/null; then
    log "the container's journal:"
    inside journalctl --no-pager -n 60 >&2 || true
  fi
  if [[ -n $pid1 ]] && kill -0 "$pid1" 2>/dev/null; then
    # SIGRTMIN+4: systemd's poweroff; in a PID namespace it ends with
    # PID 1's exit, which takes every process of the namespace along.
    kill -s RTMIN+4 "$pid1" 2>/dev/null || true
    local i
    for ((i = 0; i < 300; i++)); do
      kill -0 "$launcher" 2>/dev/null || break
      sleep 0.1
    done
  fi
  if [[ -n $launcher ]] && kill -0 "$launcher" 2>/dev/null; then
    log "container did not power off in 30 s; killing it"
    # unshare --kill-child: its death SIGKILLs PID 1, and so the namespace.
    kill -KILL "$launcher" 2>/dev/null || true
  fi
  if [[ -n $launcher ]]; then
    wait "$launcher" 2>/dev/null || true
  fi
  if [[ -d $cgroup ]]; then
    local i
    for ((i = 0; i < 100; i++)); do
      find "$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null && break
      sleep 0.1
    done
    [[ -d $cgroup ]] && log "could not remove $cgroup"
  fi
  if ((status != 0)) && [[ -s $work/console.log ]]; then
    log "container console:"
    tail -n 40 "$work/console.log" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Inputs for boot(), which cannot see this checkout once it has pivoted.
mkdir "$work/root" "$work/layers"
touch "$work/console.log"
for name in spoolcast-agent spoolcast-hub; do
  mkdir -p "$work/$name/dropins"
  cp "target/release/$name" "$work/$name/bin"
  cp "systemd/$name.service" "$work/$name/unit"
  cp "systemd/test/$name.service.d"/*.conf "$work/$name/dropins/"
done
cp packaging/debian/postinst "$work/spoolcast-agent/postinst"
cp packaging/hub-debian/postinst "$work/spoolcast-hub/postinst"
# The hub's config as shipped; systemd/test/ points it at the test's broker.
cp packaging/hub.toml "$work/spoolcast-hub/config"
cat >"$work/spoolcast-agent/config" <<EOF
[agent]
id = "$AGENT_ID"
state_dir = "/var/lib/spoolcast"

[mqtt]
url = "mqtt://127.0.0.1:$BROKER_PORT"

[[printer]]
id = "office"
# Nothing listens there: the agent reports the printer unreachable, which
# does not concern its service manager.
uri = "ipp://127.0.0.1:631/ipp/print"
EOF
cat >"$work/mosquitto.conf" <<EOF
listener $BROKER_PORT 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
connection_messages true
EOF

# What systemd raises at boot when it may (see boot()): must not move.
host_tunables() { cat /proc/sys/fs/file-max /proc/sys/fs/nr_open /proc/sys/net/unix/max_dgram_qlen; }
tunables=$(host_tunables)
mkdir "$cgroup"
log "booting systemd in $cgroup"
started=$SECONDS
# The cgroup first (the namespace's cgroup root is where it is created),
# then the namespaces. Should this script be killed outright, its death
# kills unshare, and unshare's (--kill-child) kills the container.
# shellcheck disable=SC2016 # $$, $1... are the inner shell's.
setsid bash -c 'echo $$ >"$1/cgroup.procs" && exec setpriv --pdeathsig KILL unshare --pid --fork --kill-child --mount --propagation private --uts --ipc --net --cgroup "$2" --boot "$3"' \
  _ "$cgroup" "$(realpath "$0")" "$work" >"$work/boot.log" 2>&1 </dev/null &
launcher=$!
for ((i = 0; i < 50; i++)); do
  pid1=$(ps -o pid= --ppid "$launcher" | tr -d ' ') || true
  [[ -n $pid1 ]] && break
  sleep 0.1
done
[[ -n $pid1 ]] || fail "no PID 1 started: $(cat "$work/boot.log")"

# A command inside the container.
inside() {
  nsenter --target "$pid1" --all --root --wd env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
for ((i = 0; i < BOOT_TIMEOUT * 10; i++)); do
  [[ $(readlink "/proc/$pid1/exe" 2>/dev/null) == */systemd ]] && inside test -S /run/systemd/private 2>/dev/null && break
  kill -0 "$launcher" 2>/dev/null || fail "container exited while booting: $(cat "$work/boot.log")"
  sleep 0.1
done
state=$(inside timeout "$BOOT_TIMEOUT" systemctl is-system-running --wait) || true
log "booted in $((SECONDS - started)) s: $state"
case $state in
  running) ;;
  # A unit of the host's that fails in a container does not concern the agent.
  degraded) inside systemctl --no-pager --no-legend --failed >&2 ;;
  *) fail "the container's systemd is '$state', not running" ;;
esac

[[ $(host_tunables) == "$tunables" ]] || fail "the host's kernel tunables changed: $(host_tunables | tr '\n' ' ')"

wait_until() {
  local what=$1 limit=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "$what: not within $limit s"
    sleep 0.2
  done
}
readonly AGENT=spoolcast-agent.service HUB=spoolcast-hub.service
declare -A unit
# Fills ${unit[...]} with unit $1's properties $2 (comma-separated).
show_unit() {
  local line
  unit=()
  while IFS= read -r line; do
    unit[${line%%=*}]=${line#*=}
  done < <(inside systemctl show -p "$2" "$1")
}
prop() { inside systemctl show -P "$2" "$1"; }
status_is() { [[ $(prop "$1" StatusText) == "$2" ]]; }
# One run of the unit logged $2: the agent itself, or systemd about it.
run_logged() {
  inside journalctl --no-pager -o cat "_SYSTEMD_INVOCATION_ID=$1" + "INVOCATION_ID=$1" | grep -qF -- "$2"
}
# The broker's retained availability message for the agent.
availability_is() {
  inside mosquitto_sub -h 127.0.0.1 -p "$BROKER_PORT" -C 1 -W 5 \
    -t "spoolcast/v1/agents/$AGENT_ID/availability" | grep -qF "\"state\":\"$1\""
}
listens() { inside bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
# A run that ended with exit 0 in time, having logged $2 on its way out.
ended_cleanly() {
  local invocation=$1 message=$2 what=$3
  wait_until "'$message' from $what" 5 run_logged "$invocation" "$message"
  # "Deactivated successfully": exit 0, in time (a SIGKILL after
  # TimeoutStopSec= would be result 'timeout').
  run_logged "$invocation" "Deactivated successfully" || fail "$what: not a clean exit"
}
# `systemctl stop` of unit $1 is graceful: it logs $2 and exits 0.
stops_cleanly() {
  local invocation
  invocation=$(prop "$1" InvocationID)
  inside systemctl stop "$1"
  [[ $(prop "$1" ActiveState) == inactive ]] || fail "stop $1: $(prop "$1" ActiveState)"
  # An inactive unit is unloaded at once, so its Result= and exit status
  # are gone; the journal keeps them.
  ended_cleanly "$invocation" "$2" "stop $1"
}

# The sandbox of unit $1, as the kernel sees its running process: user $2,
# no privilege, only its StateDirectory= (which holds file $3) writable,
# and a live exposure of at most 2.0.
check_sandbox() {
  local service=$1 user=$2 file=$3 main proc_status uid gid cap exposure
  main=$(prop "$service" MainPID)
  proc_status=$(inside cat "/proc/$main/status")
  field() { sed -n "s/^$1:[[:space:]]*//p" <<<"$proc_status" | tr -s '\t' ' '; }
  uid=$(inside id -u "$user")
  gid=$(inside id -g "$user")
  [[ $(field Uid) == "$uid $uid $uid $uid" ]] || fail "$service: Uid: $(field Uid), not $user ($uid)"
  [[ $(field Gid) == "$gid $gid $gid $gid" ]] || fail "$service: Gid: $(field Gid), not $user ($gid)"
  [[ $(field NoNewPrivs) == 1 ]] || fail "$service: NoNewPrivs: $(field NoNewPrivs)"
  [[ $(field Seccomp) == 2 ]] || fail "$service: Seccomp: $(field Seccomp), not 2 (filter)"
  for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
    [[ $(field $cap) == 0000000000000000 ]] || fail "$service: $cap: $(field $cap)"
  done
  # The last mount at a path is the one the process sees.
  # shellcheck disable=SC2016 # awk's fields.
  mount_options() { inside awk -v at="$1" '$5 == at { o = $6 } END { print o }' "/proc/$main/mountinfo"; }
  [[ $(mount_options /) == ro,* ]] || fail "/ is mounted '$(mount_options /)' for $service (ProtectSystem=strict)"
  [[ $(mount_options /home) == ro,* ]] || fail "/home is mounted '$(mount_options /home)' for $service (ProtectHome=yes)"
  # ConfigurationDirectory= bind-mounts it, writable unless ReadOnlyPaths=.
  [[ $(mount_options /etc/spoolcast) == ro,* ]] || fail "/etc/spoolcast is mounted '$(mount_options /etc/spoolcast)' for $service"
  [[ $(mount_options "${file%/*}") == rw,* ]] || fail "the state dir is not writable for $service"
  [[ $(inside stat -c %U "$file") == "$user" ]] || fail "$file is not owned by $user"
  exposure=$(inside systemd-analyze security --no-pager "$service" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  inside systemd-analyze security --threshold=20 "$service" >/dev/null || fail "$service: live exposure $exposure is above 2.0"
  log "ok: $service: uid/gid $user, NoNewPrivs, seccomp, no capabilities, read-only /, /home and /etc/spoolcast, state dir writable; live exposure $exposure"
}

inside systemctl start spoolcast-test-broker.service
wait_until "mosquitto listening on $BROKER_PORT" 10 listens "$BROKER_PORT"

# 1. Type=notify. A stopped mosquitto still completes TCP handshakes (the
# kernel does that) but never sends CONNACK, so the agent's first attempt
# can only fail by its connect timeout; until then it sends no READY=1 and
# the unit must stay "activating" though its process runs.
inside systemctl kill -s SIGSTOP spoolcast-test-broker.service
inside systemctl start --no-block "$AGENT"
held=0
deadline=$((SECONDS + 30))
while :; do
  show_unit "$AGENT" ActiveState,SubState,MainPID,StatusText
  case ${unit[ActiveState]} in
    activating)
      if [[ ${unit[MainPID]} != 0 ]]; then
        held=$((held + 1))
        [[ -z ${unit[StatusText]} ]] || fail "status '${unit[StatusText]}' while still activating"
      fi
      ;;
    active) break ;;
    # The start job may not have run yet.
    inactive) ((held == 0)) || fail "agent inactive after it was activating" ;;
    *) fail "agent ${unit[ActiveState]}/${unit[SubState]} while starting" ;;
  esac
  ((SECONDS < deadline)) || fail "no READY=1 within 30 s with the broker silent"
  sleep 0.2
done
((held >= 3)) || fail "active after $held samples with a running agent and a silent broker: not held until READY=1"
[[ ${unit[SubState]} == running && ${unit[StatusText]} == "retrying broker connection" ]] ||
  fail "after READY=1: ${unit[SubState]}, status '${unit[StatusText]}'"
log "ok: activating ($held samples) until READY=1, then active: '${unit[StatusText]}'"
inside systemctl kill -s SIGCONT spoolcast-test-broker.service
wait_until "status 'connected to broker'" 45 status_is "$AGENT" "connected to broker"
wait_until "retained availability online" 10 availability_is online
log "ok: broker answered: 'connected to broker', availability online"

# 2. The sandbox.
check_sandbox "$AGENT" spoolcast /var/lib/spoolcast/journal.sqlite3

# 3. The watchdog: a healthy agent outlives two periods; a frozen one is
# killed and restarted.
[[ $(prop "$AGENT" WatchdogUSec) == "${WATCHDOG_SEC}s" ]] || fail "WatchdogUSec is $(prop "$AGENT" WatchdogUSec), not the drop-in's ${WATCHDOG_SEC}s"
main=$(prop "$AGENT" MainPID)
restarts=$(prop "$AGENT" NRestarts)
sleep $((2 * WATCHDOG_SEC + 2))
show_unit "$AGENT" ActiveState,MainPID,NRestarts
[[ ${unit[ActiveState]} == active && ${unit[MainPID]} == "$main" && ${unit[NRestarts]} == "$restarts" ]] ||
  fail "after $((2 * WATCHDOG_SEC + 2)) s: ${unit[ActiveState]}, PID ${unit[MainPID]} (was $main), ${unit[NRestarts]} restarts"
log "ok: alive and pinging for $((2 * WATCHDOG_SEC + 2)) s (WatchdogSec=${WATCHDOG_SEC}s)"
invocation=$(prop "$AGENT" InvocationID)
inside systemctl kill --kill-who=main -s SIGSTOP "$AGENT"
restarted() {
  show_unit "$AGENT" ActiveState,MainPID,NRestarts
  [[ ${unit[ActiveState]} == active && ${unit[MainPID]} != "$main" && ${unit[NRestarts]} == $((restarts + 1)) ]]
}
# The watchdog period, RestartSec=5s, and a start.
wait_until "restart by the watchdog" $((WATCHDOG_SEC + 5 + 20)) restarted
run_logged "$invocation" "Failed with result 'watchdog'" || fail "restarted, but not for the watchdog"
log "ok: frozen agent killed (result 'watchdog') and restarted as PID ${unit[MainPID]}"
wait_until "status 'connected to broker' after the restart" 45 status_is "$AGENT" "connected to broker"

# 4. A graceful stop.
stops_cleanly "$AGENT" "agent stopped"
availability_is offline || fail "retained availability is not offline after the stop"
log "ok: stop: exit 0, 'agent stopped' logged, availability offline"

# Then a restart: a new process, stopped gracefully too, and connected again.
inside systemctl start "$AGENT"
main=$(prop "$AGENT" MainPID)
invocation=$(prop "$AGENT" InvocationID)
inside systemctl restart "$AGENT"
show_unit "$AGENT" ActiveState,MainPID
[[ ${unit[ActiveState]} == active && ${unit[MainPID]} != "$main" ]] ||
  fail "restart: ${unit[ActiveState]}, PID ${unit[MainPID]} (was $main)"
ended_cleanly "$invocation" "agent stopped" "the restarted run"
wait_until "status 'connected to broker' after restart" 45 status_is "$AGENT" "connected to broker"
wait_until "retained availability online after restart" 10 availability_is online
log "ok: restart: PID $main stopped gracefully, PID ${unit[MainPID]} connected"

# 5. The hub: a user added as the docs say, before the first start, with
# the daemon's rights (so the database it creates is the daemon's).
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
inside runuser -u spoolcast-hub -- spoolcast-hub -c /etc/spoolcast/hub.toml user add "$HUB_USER" <<<"$password" ||
  fail "spoolcast-hub user add"
# Type=notify: `systemctl start` returns at READY=1, which the hub sends
# once the port listens, so the port must answer at once.
inside systemctl start "$HUB"
show_unit "$HUB" ActiveState,SubState,StatusText
[[ ${unit[ActiveState]} == active && ${unit[SubState]} == running ]] || fail "$HUB: ${unit[ActiveState]}/${unit[SubState]} after start"
listens "${HUB_URL##*:}" || fail "$HUB is active, but nothing listens on $HUB_URL"
# The hub started with url_secret_file set, so it read the key the
# postinst made for it alone.
key=$(inside stat -c '%U:%G %a' /etc/spoolcast/hub-url.key)
[[ $key == "root:spoolcast-hub 640" ]] || fail "/etc/spoolcast/hub-url.key is $key, not root:spoolcast-hub 640"
log "ok: $HUB active after READY=1: '${unit[StatusText]}', URL key $key"

# 6. The sandbox.
check_sandbox "$HUB" spoolcast-hub /var/lib/spoolcast-hub/hub.db

# 7. Login and an authenticated request (argon2, SQLite, tokio under the
# sandbox), then the agent's printer as the hub heard it from the broker.
login=$(jq -nc --arg u "$HUB_USER" --arg p "$password" '{username: $u, password: $p, device: "systemd test"}')
token=$(inside curl -fsS -H 'Content-Type: application/json' -d "$login" "$HUB_URL/api/login" | jq -er .token) ||
  fail "POST /api/login as $HUB_USER"
hub_get() { inside curl -fsS -H "Authorization: Bearer $token" "$HUB_URL$1"; }
[[ $(hub_get /api/me | jq -r .name) == "$HUB_USER" ]] || fail "GET /api/me: $(hub_get /api/me)"
log "ok: $HUB: login and GET /api/me as $HUB_USER"
lists_agent_printer() {
  hub_get /api/printers | jq -e --arg agent "$AGENT_ID" \
    'any(.printers[]; .id == "office" and .agent_id == $agent and .online)' >/dev/null
}
wait_until "printer 'office' of $AGENT_ID online in GET /api/printers" 10 lists_agent_printer
log "ok: $HUB lists printer 'office' of $AGENT_ID, online"

# 8. A graceful stop.
stops_cleanly "$HUB" "hub stopped"
log "ok: $HUB stop: exit 0, 'hub stopped' logged"

log "all checks passed in $((SECONDS - started)) s"
