# Shared helpers of the native platform scripts. Source it; it sets ROOT, STATE and exports .env's
# values (a variable already set in the environment wins over .env).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.state"
PIDS="$STATE/pids"
LOGS="$STATE/logs"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
# .state holds database files, Kafka segments with personal data and logs: its owner's only.
mkdir -p "$STATE" && chmod 0700 "$STATE"
mkdir -p "$PIDS" "$LOGS"

# .env is read by runner/config.py, the platform's one reader (compose's rules; see README.md),
# which prints each key's effective value as `export KEY='...'`. It needs only the standard
# library, so the system python3 reads it while the virtual environment does not exist yet.
load_env() {
  local python="$PY" exports
  [ -x "$python" ] || python="$(command -v python3 || true)"
  [ -n "$python" ] || { echo "error: python3 is needed to read $ROOT/.env (apt-get install python3)" >&2; exit 1; }
  exports="$("$python" "$ROOT/runner/config.py" --export)" || exit 2
  eval "$exports"
}
load_env

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The host part of a host:port list's first entry, and its port.
host_of() { local a="${1%%,*}"; echo "${a%:*}"; }
port_of() { local a="${1%%,*}"; echo "${a##*:}"; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

pid_alive() { local f="$PIDS/$1.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# start_service NAME HOST PORT[,PORT...] COMMAND...: start COMMAND in its own session with a PID
# file and a log under .state, unless our own copy already runs. PORT lists every port the service
# listens on; one taken by anything else is an error naming the service and port; nothing else is
# touched.
start_service() {
  local name="$1" host="$2" ports="$3" port="${3%%,*}" p; shift 3
  mkdir -p "$PIDS" "$LOGS"
  if pid_alive "$name"; then
    echo "$name: already running (pid $(cat "$PIDS/$name.pid"), $host:$port)"
    return 0
  fi
  for p in ${ports//,/ }; do
    if port_open "$host" "$p"; then
      die "$name: port $p on $host is already in use by another process; stop it or change the port in .env"
    fi
  done
  setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$PIDS/$name.pid"
  echo "$name: started (pid $!, $host:$port, log .state/logs/$name.log)"
}

# wait_for NAME HOST PORT TIMEOUT CHECK...: poll CHECK until it succeeds; on timeout print which
# service and port failed and the end of its log.
wait_for() {
  local name="$1" host="$2" port="$3" timeout="$4"; shift 4
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! pid_alive "$name"; then
      echo "error: $name exited before answering on $host:$port; last lines of .state/logs/$name.log:" >&2
      tail -n 20 "$LOGS/$name.log" >&2 || true
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "error: $name did not answer on $host:$port within ${timeout}s; last lines of .state/logs/$name.log:" >&2
      tail -n 20 "$LOGS/$name.log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
}

# stop_service NAME: stop the process (group) we started for NAME, by its PID file only.
stop_service() {
  local name="$1" f="$PIDS/$1.pid" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; }
    echo "$name: stopped (pid $pid)"
  fi
  rm -f "$f"
}

# PostgreSQL runs as the `postgres` OS user; its data lives under .state when that user can
# reach the folder, else under /var/lib/postgresql with a link from .state.
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups --reset-env -- env "PATH=$(pg_bin):/usr/bin:/bin" "$@"; }
pg_data() { echo "$STATE/postgres"; }

# psql as the superuser through the Unix socket (peer authentication, no password). Run from /,
# since the postgres user may not be able to enter this checkout; feed it files on stdin for the
# same reason (pg_superuser_psql -d db < file).
pg_superuser_psql() {
  (cd / && PGOPTIONS="-c client_min_messages=warning" setpriv --reuid=postgres --regid=postgres --init-groups -- \
    "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$(readlink -f "$(pg_data)")" -p "$POSTGRESQL_APP_PORT" -U postgres "$@")
}

mysql_socket() { echo "$STATE/mysql/mysqld.sock"; }
# The MySQL client as root through the Unix socket (socket authentication, no password).
mysql_root() { mariadb --no-defaults --socket="$(mysql_socket)" -uroot "$@"; }
