#!/usr/bin/env bash
# Installs what the platform needs and is missing: Debian packages, the virtual environment
# with the project, and the JVM artifacts declared in jvm/pom.xml. Each step is skipped when
# its inputs have not changed since it last ran, so a second run takes a second.
#   local/install.sh          everything `make up` needs
#   local/install.sh test     also what only the tests need (headless Chromium)
source "$(dirname "$0")/lib.sh"

APT_PACKAGES=(postgresql mariadb-server mariadb-client default-libmysqlclient-dev pkg-config build-essential curl)
[ "${1:-}" = test ] && APT_PACKAGES+=(chromium chromium-driver)

install_debian_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  # Our own scripts start the servers; keep the packages from creating and starting default ones.
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf \
    || echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
  local policy=/usr/sbin/policy-rc.d added_policy=""
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; added_policy=1; fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ -n "$added_policy" ] && rm -f "$policy"
  return 0
}

# Run a noisy installer with its output in .state/logs/install.log, shown only on failure.
quietly() {
  "$@" >> "$LOGS/install.log" 2>&1 || { tail -n 30 "$LOGS/install.log" >&2; die "failed: $*"; }
}

stamp_matches() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

install_venv() {
  local stamp="$VENV/.installed" want
  want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
  stamp_matches "$stamp" "$want" && return 0
  say "installing the Python environment in .venv"
  local python; python="$(command -v python3.11 || command -v python3)"
  [ -x "$PY" ] || "$python" -m venv "$VENV"
  quietly "$PY" -m pip install --upgrade pip wheel
  quietly "$PY" -m pip install -e "$ROOT[test]"
  echo "$want" > "$stamp"
}

install_jars() {
  local stamp="$STATE/jars/.installed" want
  want="$(cat "$ROOT/jvm/pom.xml" | sha256sum | cut -c1-16)"
  stamp_matches "$stamp" "$want" && return 0
  say "resolving JVM artifacts from jvm/pom.xml"
  rm -rf "$STATE/jars"
  mkdir -p "$STATE/jars"
  for profile in spark kafka-broker; do
    quietly mvn -B -f "$ROOT/jvm/pom.xml" -P "$profile" dependency:copy-dependencies \
      -DoutputDirectory="$STATE/jars/$profile"
  done
  echo "$want" > "$stamp"
}

# Spark's start-up classes, archived once per JVM, Spark version and jar set (runner/engine/session.py).
install_class_archive() {
  local stamp="$STATE/jars/.class-archive" want
  want="$( { java -version 2>&1; "$PY" -c 'import pyspark; print(pyspark.__version__)'; ls "$STATE/jars/spark"; } \
    | sha256sum | cut -c1-16)"
  stamp_matches "$stamp" "$want" && return 0
  say "archiving the Spark driver's classes (once, for a faster start of every run)"
  # Only a speed-up: without the archive Spark starts as it always does.
  if "$PY" -m runner.engine.session >> "$LOGS/install.log" 2>&1; then
    echo "$want" > "$stamp"
  else
    say "could not write the class archive (see .state/logs/install.log); Spark will start without it"
  fi
}

install_debian_packages
install_venv
install_jars
install_class_archive
