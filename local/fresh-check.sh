#!/usr/bin/env bash
# Reproduces a newcomer on a fresh machine: builds a minimal Debian 12 root (debootstrap
# --variant=minbase bookworm, from the Debian mirror this machine's apt uses), installs only git,
# make and ca-certificates in it, clones this checkout's current commit, runs the install with
# the network, then `make demo` and `make test` in an isolated network namespace (loopback only),
# so the root's services never meet those of the host on the same ports. Prints each step's time
# and exit code; unmounts and stops what it started on exit. Too slow for CI (30-60 min on 2 cores).
#   local/fresh-check.sh [ROOT_DIR]      as root; ROOT_DIR defaults to /var/tmp/platform-fresh-check
# The root is kept for a look afterwards and replaced by the next run.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$(realpath -m "${1:-/var/tmp/platform-fresh-check}")"
CLONE=/root/platform   # inside the root: where a newcomer would clone it as root
COMMIT="$(git -C "$REPO" rev-parse HEAD)"   # fixed at the start: later commits do not leak in
SUMMARY=()
FAILED=0

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "fresh-check needs root (debootstrap, chroot, mounts, network namespaces)"
case "$DIR" in /|/root|/home|/var|/var/tmp|/tmp|"$REPO") die "refusing to build the root in $DIR: give a folder of its own";; esac

# step NAME COMMAND...: run COMMAND, then print and record its exit code and time.
step() {
  local name="$1" started=$SECONDS code=0; shift
  say "$name"
  # A subshell with errexit of its own: the step's first failing command ends it.
  set +e; ( set -e; "$@" ); code=$?; set -e
  local line; line="$(printf '%-34s exit %-3s %5ss' "$name" "$code" "$((SECONDS - started))")"
  SUMMARY+=("$line")
  echo "--- $line"
  [ "$code" -eq 0 ] || FAILED=1
  return "$code"
}

summary() {
  echo
  say "fresh-check summary (root $DIR, commit ${COMMIT:0:7})"
  printf '  %s\n' "${SUMMARY[@]}"
}

# Mount points under the root, deepest first.
mounts_under() { awk -v d="$DIR" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/self/mounts | sort -r; }

# Processes whose root directory is the fresh root: only what this script started there.
stop_processes() {
  local pid pids=()
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$DIR" ] && pids+=("$pid")
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  echo "stopping processes left in the root: ${pids[*]}"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  sleep 5
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null; done
  return 0
}

cleanup() {
  local code=$?
  stop_processes
  local m
  for m in $(mounts_under); do umount "$m" 2>/dev/null || umount -l "$m" || echo "warning: could not unmount $m" >&2; done
  [ ${#SUMMARY[@]} -gt 0 ] && summary
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The URI of the first apt source for bookworm itself (one-line or deb822 format).
debian_mirror() {
  local uri
  uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | sed -E 's/\[[^]]*\]//' \
    | awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}')"
  [ -n "$uri" ] || uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
    /^[[:space:]]*$/ {if (deb && book && u) {print u; exit}; deb = book = 0; u = ""; next}
    /^Types:/ {for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1}
    /^URIs:/ {u = $2}
    /^Suites:/ {for (i = 2; i <= NF; i++) if ($i == "bookworm") book = 1}
    END {if (deb && book && u) print u}' | head -n 1)"
  echo "${uri:-http://deb.debian.org/debian}"
}

# The root's processes get a clean environment, as after a login: nothing of this one leaks in.
ENV_BASE=(HOME=/root LANG=C.UTF-8 TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
ROOT_ENV=()
in_root() { chroot "$DIR" /usr/bin/env -i "${ENV_BASE[@]}" "${ROOT_ENV[@]}" "$@"; }

make_root() {
  if [ -e "$DIR" ]; then
    [ -z "$(mounts_under)" ] || die "$DIR still has mounts: $(mounts_under | tr '\n' ' ')"
    rm -rf --one-file-system "$DIR"
  fi
  if ! command -v debootstrap >/dev/null; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
  fi
  local mirror; mirror="$(debian_mirror)"
  echo "mirror: $mirror"
  debootstrap --variant=minbase bookworm "$DIR" "$mirror" > "$LOG_DIR/debootstrap.log" 2>&1 \
    || { tail -n 20 "$LOG_DIR/debootstrap.log" >&2; exit 1; }
}

mount_root() {
  mount -t proc proc "$DIR/proc"
  mount -t sysfs sysfs "$DIR/sys"
  mount --bind /dev "$DIR/dev"
  mount --bind /dev/pts "$DIR/dev/pts"
  mkdir -p "$DIR/dev/shm" && mount -t tmpfs -o mode=1777 shm "$DIR/dev/shm"  # the JVMs' and PostgreSQL's shared memory
  # As in a container: localhost resolves, this machine's host name does not.
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$DIR/etc/hosts"
  cp /etc/resolv.conf "$DIR/etc/resolv.conf"
}

base_packages() {
  # Where this machine intercepts HTTPS, the root needs the machine's extra CA certificates;
  # ca-certificates adds them to the root's store as it installs, and pip is pointed at it.
  if [ -n "$EXTRA_CAS" ]; then
    mkdir -p "$DIR/usr/local/share/ca-certificates"
    cp -r /usr/local/share/ca-certificates/. "$DIR/usr/local/share/ca-certificates/"
  fi
  in_root apt-get update -q
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends git make ca-certificates
}

clone() {
  git clone -q --no-local "$REPO" "$DIR$CLONE"
  git -C "$DIR$CLONE" checkout -q --detach "$COMMIT"
  git -C "$DIR$CLONE" log --oneline -1
}

# make demo, then make test, in one network namespace with only loopback: the services demo
# starts are the ones test uses, and none of them can reach or clash with the host's. Each
# result goes to $RESULTS as "name<TAB>exit<TAB>seconds".
offline_run() {
  DIR="$DIR" CLONE="$CLONE" RESULTS="$RESULTS" unshare --net bash -c '
    set -u
    ip link set lo up || exit 97
    run() {
      local name="$1" started=$SECONDS code=0; shift
      printf "\033[1m==>\033[0m %s (no network)\n" "$name"
      "$@" || code=$?
      printf "%s\t%s\t%s\n" "$name" "$code" "$((SECONDS - started))" >> "$RESULTS"
      printf -- "--- %-34s exit %-3s %5ss\n" "$name (no network)" "$code" "$((SECONDS - started))"
    }
    run "make demo" chroot "$DIR" /usr/bin/env -i "$@" make -C "$CLONE" demo
    run "make test" chroot "$DIR" /usr/bin/env -i "$@" make -C "$CLONE" test
    chroot "$DIR" /usr/bin/env -i "$@" make -C "$CLONE" down > /dev/null 2>&1 || true
  ' fresh-check "${ENV_BASE[@]}" "${ROOT_ENV[@]}"
}

LOG_DIR="$(mktemp -d /var/tmp/fresh-check-logs.XXXXXX)"
EXTRA_CAS="$(compgen -G '/usr/local/share/ca-certificates/*' || true)"
[ -z "$EXTRA_CAS" ] || ROOT_ENV+=(PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
say "building a minimal Debian 12 in $DIR from commit ${COMMIT:0:7} (logs: $LOG_DIR)"
step "debootstrap minbase bookworm" make_root || exit 1
step "mount /proc /sys /dev /dev/shm" mount_root || exit 1
step "apt-get install git make ca-certs" base_packages || exit 1
step "git clone the current commit" clone || exit 1
step "install (with network)" in_root bash -c "cd $CLONE && bash local/install.sh test" || exit 1

RESULTS="$LOG_DIR/offline-results.tsv"
: > "$RESULTS"
unshare_code=0
offline_run || unshare_code=$?
[ "$unshare_code" -eq 97 ] && SUMMARY+=("network namespace: could not bring loopback up")
while IFS=$'\t' read -r name code seconds; do
  SUMMARY+=("$(printf '%-34s exit %-3s %5ss' "$name (no network)" "$code" "$seconds")")
  [ "$code" -eq 0 ] || FAILED=1
done < "$RESULTS"
[ -s "$RESULTS" ] || { SUMMARY+=("make demo/test did not run (unshare exit $unshare_code)"); FAILED=1; }
SUMMARY+=("$(printf '%-34s %13ss' "total" "$SECONDS")")
exit "$FAILED"
