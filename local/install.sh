#!/usr/bin/env bash
# Installs what the platform needs and is missing: Debian packages (Python 3.11 with venv and
# headers, Java 17, Maven, compilers, PostgreSQL, MariaDB), the virtual environment with the
# project, and the JVM artifacts declared in jvm/pom.xml. Each step is skipped when its inputs
# have not changed since it last ran, so a second run takes a second. On a minimal Debian 12
# with only git and make, as root, it brings everything else.
#   local/install.sh          everything `make up` needs
#   local/install.sh test     also what only the tests need (headless Chromium)

# lib.sh reads .env with python3 (runner/config.py), so a machine without one gets Debian's first.
if ! command -v python3 >/dev/null 2>&1; then
  bootstrap_log="$(cd "$(dirname "$0")/.." && pwd)/.state/logs/install.log"
  mkdir -p "$(dirname "$bootstrap_log")"
  printf '\033[1m==>\033[0m %s\n' "installing Debian's Python 3.11 (python3 python3.11-venv python3.11-dev): .env is read with it"
  [ "$(id -u)" -eq 0 ] || { echo "error: python3 is missing and installing it needs root: run \`make up\` as root, or apt-get install python3 python3.11-venv python3.11-dev" >&2; exit 1; }
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
         python3 python3.11-venv python3.11-dev; } >> "$bootstrap_log" 2>&1; then
    tail -n 20 "$bootstrap_log" >&2
    echo "error: could not install python3 from Debian (see .state/logs/install.log): check that the Debian mirror in /etc/apt/sources.list* is reachable, then run \`make up\` again" >&2
    exit 1
  fi
fi
source "$(dirname "$0")/lib.sh"

INSTALL_LOG="$LOGS/install.log"
PYTHON_MINOR=3.11   # pyproject.toml's requires-python
JAVA_MAJOR=17       # Spark 4 needs 17 or later; the images run 17 (tests/static checks them)

APT_PACKAGES=(postgresql mariadb-server mariadb-client default-libmysqlclient-dev pkg-config
  build-essential curl ca-certificates)
[ "${1:-}" = test ] && APT_PACKAGES+=(chromium chromium-driver)

# Any step that fails without its own message still says where, what to read and what to do.
set -E
step="starting"
trap 'printf "error: install step \"%s\" failed (line %s: %s); see %s, fix the cause, then run \`make up\` again\n" \
  "$step" "$LINENO" "$BASH_COMMAND" ".state/logs/install.log" >&2' ERR
ADDED_POLICY=""
trap 'if [ -n "$ADDED_POLICY" ]; then rm -f "$ADDED_POLICY"; fi' EXIT

# Run a noisy installer with its output in .state/logs/install.log; on failure show the end of
# that output on the terminal, then what failed and what to do.
quietly() {
  local hint="$1"; shift
  echo "--- $(date '+%F %T') $*" >> "$INSTALL_LOG"
  "$@" >> "$INSTALL_LOG" 2>&1 && return 0
  echo "--- last lines of .state/logs/install.log:" >&2
  tail -n 30 "$INSTALL_LOG" >&2
  die "$step failed: $*; $hint"
}

stamp_matches() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# A Python $PYTHON_MINOR that can make a venv with pip and has the headers C extensions build
# against (mysqlclient): its path, or nothing.
usable_python() {
  local candidate
  for candidate in "$(command -v "python$PYTHON_MINOR" || true)" "/usr/bin/python$PYTHON_MINOR"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    "$candidate" - "$PYTHON_MINOR" >/dev/null 2>&1 <<'PY' && { echo "$candidate"; return 0; }
import ensurepip, os, sys, sysconfig, venv  # ensurepip: Debian ships it in pythonX.Y-venv
assert "%d.%d" % sys.version_info[:2] == sys.argv[1]
assert os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h"))
PY
  done
  return 1
}

java_major() {
  command -v java >/dev/null 2>&1 || { echo 0; return; }
  java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | cut -d. -f1
}

install_debian_packages() {
  step="Debian packages"
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  usable_python >/dev/null || missing+=("python$PYTHON_MINOR" "python$PYTHON_MINOR-venv" "python$PYTHON_MINOR-dev")
  [ "$(java_major)" -ge "$JAVA_MAJOR" ] 2>/dev/null || missing+=("openjdk-$JAVA_MAJOR-jre-headless")
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  [ "$(id -u)" -eq 0 ] || die "installing Debian packages needs root: run \`make up\` as root, or install them first: apt-get install ${missing[*]}"
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this install is for Debian 12; install by hand: ${missing[*]}"
  # Our own scripts start the servers; keep the packages from creating and starting default ones.
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf \
    || echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    ADDED_POLICY=/usr/sbin/policy-rc.d  # removed on exit, whether apt-get succeeds or not
  fi
  quietly "check that the Debian mirror in /etc/apt/sources.list* is reachable (or set a proxy for apt), then run \`make up\` again" \
    apt-get update
  quietly "the packages above must be installable from Debian 12 (bookworm) main; fix apt (\`apt-get -f install\`), then run \`make up\` again" \
    env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  usable_python >/dev/null || die "python$PYTHON_MINOR with venv and headers is still missing after apt-get; install python$PYTHON_MINOR-venv and python$PYTHON_MINOR-dev"
  [ "$(java_major)" -ge "$JAVA_MAJOR" ] 2>/dev/null \
    || die "java is Java $(java_major), Spark needs $JAVA_MAJOR or later: select it with \`update-alternatives --config java\`"
}

# Why .venv cannot be used as it is (it must run Python $PYTHON_MINOR and have pip), or nothing.
venv_fault() {
  [ -e "$VENV" ] || return 1
  [ -x "$PY" ] || { echo "it has no bin/python"; return 0; }
  local version
  version="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" \
    || { echo "its bin/python does not run (its base Python may be gone)"; return 0; }
  [ "$version" = "$PYTHON_MINOR" ] || { echo "it runs Python $version, not $PYTHON_MINOR"; return 0; }
  "$PY" -m pip --version >/dev/null 2>&1 || { echo "it has no pip (made while python$PYTHON_MINOR-venv was missing?)"; return 0; }
  return 1
}

install_venv() {
  step="Python environment (.venv)"
  local stamp="$VENV/.installed" want fault python
  fault="$(venv_fault)" && { say "rebuilding .venv: $fault"; rm -rf "$VENV"; }
  want="$(sha256sum < "$ROOT/pyproject.toml" | cut -c1-16)"
  stamp_matches "$stamp" "$want" && return 0
  say "installing the Python environment in .venv (log: .state/logs/install.log)"
  python="$(usable_python)" || die "no python$PYTHON_MINOR with venv and headers: install python$PYTHON_MINOR python$PYTHON_MINOR-venv python$PYTHON_MINOR-dev"
  if [ ! -e "$VENV" ]; then
    quietly "install python$PYTHON_MINOR-venv, then run \`make up\` again" "$python" -m venv "$VENV"
  fi
  local pip_hint="check that PyPI is reachable (HTTPS proxies need their CA in /usr/local/share/ca-certificates and \`update-ca-certificates\`), then run \`make up\` again"
  quietly "$pip_hint" "$PY" -m pip install --upgrade pip wheel
  quietly "$pip_hint; a compiler error names the Debian package with the missing header" \
    "$PY" -m pip install -e "$ROOT[test]"
  echo "$want" > "$stamp"
}

install_jars() {
  step="JVM artifacts (jvm/pom.xml)"
  local stamp="$STATE/jars/.installed" want
  want="$(sha256sum < "$ROOT/jvm/pom.xml" | cut -c1-16)"
  stamp_matches "$stamp" "$want" && return 0
  say "resolving JVM artifacts from jvm/pom.xml (log: .state/logs/install.log)"
  rm -rf "$STATE/jars"
  mkdir -p "$STATE/jars"
  for profile in spark kafka-broker; do
    quietly "check that each version in jvm/pom.xml exists and Maven Central is reachable (a proxy goes in ~/.m2/settings.xml), then run \`make up\` again" \
      mvn -B -f "$ROOT/jvm/pom.xml" -P "$profile" dependency:copy-dependencies -DoutputDirectory="$STATE/jars/$profile"
  done
  echo "$want" > "$stamp"
}

# Spark's start-up classes, archived once per JVM, Spark version and jar set (runner/engine/session.py).
install_class_archive() {
  step="Spark class archive"
  local stamp="$STATE/jars/.class-archive" want
  want="$( { java -version 2>&1; "$PY" -c 'import pyspark; print(pyspark.__version__)'; ls "$STATE/jars/spark"; } \
    | sha256sum | cut -c1-16)"
  stamp_matches "$stamp" "$want" && return 0
  say "archiving the Spark driver's classes (once, for a faster start of every run)"
  # Only a speed-up: without the archive Spark starts as it always does; but say why on the
  # terminal, since a Spark that cannot start here fails every run the same way.
  if "$PY" -m runner.engine.session >> "$INSTALL_LOG" 2>&1; then
    echo "$want" > "$stamp"
  else
    echo "warning: could not write the Spark class archive; Spark will start without it. Last lines of .state/logs/install.log:" >&2
    grep -E 'Exception|Error' "$INSTALL_LOG" | tail -n 5 >&2 || tail -n 5 "$INSTALL_LOG" >&2
  fi
}

install_debian_packages
install_venv
install_jars
install_class_archive
step="done"
