#!/usr/bin/env bash
# Local Airflow 3: its four components (api-server with the UI and REST API on AIRFLOW_PORT,
# scheduler with the LocalExecutor, dag-processor, triggerer) in one process group, with its
# metadata in the local PostgreSQL (database AIRFLOW_DB) and its home, logs and PID under .state.
#   local/airflow.sh start     create the metadata database if missing, start, wait until healthy
#   local/airflow.sh stop      stop the whole process group (tasks and their spark-submit included)
#   local/airflow.sh status    which process runs and what /api/v2/monitor/health says
#   local/airflow.sh trigger DAG   start a run of DAG now through the REST API (prints the run id)
# Everything comes from .env; the environment wins. No secret appears on a command line.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export AIRFLOW_HOME="$STATE/airflow"
AIRFLOW_URL="http://localhost:$AIRFLOW_PORT"
START_TIMEOUT="${AIRFLOW_START_TIMEOUT:-240}"

# Airflow's configuration as environment variables, printed as `export` lines for eval. Built in
# Python so that passwords and JSON are quoted correctly whatever they contain.
airflow_environment() {
  "$PY" - <<'PY'
import importlib.util, json, os, secrets, shlex
from pathlib import Path
from urllib.parse import quote

e = os.environ
home = Path(e["AIRFLOW_HOME"])
root = Path(e["ROOT"])
spec = importlib.util.spec_from_file_location("airflow_settings", root / "docker/airflow/settings.py")
airflow_settings = importlib.util.module_from_spec(spec)
spec.loader.exec_module(airflow_settings)


def secret(name: str) -> str:
    """A random value made once and kept in AIRFLOW_HOME, so every component and restart agree."""
    path = home / name
    if not path.exists() or len(path.read_text().strip()) < 64:  # HS512 wants 64 bytes or more
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


users = f"{e['AIRFLOW_ADMIN_USER']}:admin"
config = {
    "AIRFLOW_HOME": str(home),
    "PATH": f"{root / '.venv/bin'}:{e['PATH']}",  # `airflow` and `spark-submit` of the venv
    # The runs' spark-submit drivers bind and advertise loopback by address, as the runner's own
    # sessions do (runner/engine/session.py): this machine's host name may not resolve.
    "SPARK_LOCAL_IP": e.get("SPARK_LOCAL_IP", "127.0.0.1"),
    "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),  # serves the DAG docs' lineage pictures
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    # The LocalExecutor starts `parallelism` worker processes (32 by default): sized for 2 cores.
    "AIRFLOW__CORE__PARALLELISM": e.get("AIRFLOW_PARALLELISM", "3"),
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": users,
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{e['AIRFLOW_PORT']}/execution/",
    "AIRFLOW__CORE__FERNET_KEY": e.get("AIRFLOW__CORE__FERNET_KEY") or secret("fernet.key"),
    "AIRFLOW__API__HOST": e.get("AIRFLOW_HOST", "127.0.0.1"),
    "AIRFLOW__API__PORT": e["AIRFLOW_PORT"],
    "AIRFLOW__API__BASE_URL": f"http://localhost:{e['AIRFLOW_PORT']}",
    "AIRFLOW__API__WORKERS": "1",
    "AIRFLOW__API_AUTH__JWT_SECRET": secret("jwt.secret"),
    # The scheduler starts beside a slower api-server: let a task's first calls to the
    # execution API wait for it (1s, 2s, 4s ... ) instead of failing the try.
    "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
        f"postgresql+psycopg2://{quote(e['AIRFLOW_DB_USER'], safe='')}:{quote(e['AIRFLOW_DB_PASSWORD'], safe='')}"
        f"@{e['POSTGRESQL_APP_HOST']}:{e['POSTGRESQL_APP_PORT']}/{e['AIRFLOW_DB']}"),
    "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
    # Connections: the JSON form, built as compose builds them (an unescaped `spark://local[*]`
    # URI would not parse and the Spark hook would silently fall back to yarn).
    **airflow_settings.connections(e),
}
# The simple auth manager reads the admin's password from this file; writing it before start
# keeps Airflow from generating a random one.
passwords = home / "passwords.json"
passwords.write_text(json.dumps({e["AIRFLOW_ADMIN_USER"]: e["AIRFLOW_ADMIN_PASSWORD"]}) + "\n")
passwords.chmod(0o600)
for key, value in config.items():
    print(f"export {key}={shlex.quote(value)}")
PY
}

# The health endpoint's verdict: prints each component's status; succeeds when all are healthy.
health() {
  "$PY" - "$AIRFLOW_URL/api/v2/monitor/health" <<'PY'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
        report = json.load(response)
except Exception as error:
    print(f"no answer from {sys.argv[1]}: {error}")
    sys.exit(1)
states = {name: (part or {}).get("status") for name, part in report.items()}
print(", ".join(f"{name} {state}" for name, state in states.items()))
sys.exit(0 if states and all(state == "healthy" for state in states.values()) else 1)
PY
}

start() {
  local started=$SECONDS
  mkdir -p "$AIRFLOW_HOME" "$LOGS" "$PIDS"
  port_open "$POSTGRESQL_APP_HOST" "$POSTGRESQL_APP_PORT" \
    || die "airflow: PostgreSQL is not answering on $POSTGRESQL_APP_HOST:$POSTGRESQL_APP_PORT; run 'make up' first"
  export ROOT
  "$ROOT/local/initdb.sh" postgresql  # its metadata database is part of the shared init SQL
  local environment; environment="$(airflow_environment)"
  eval "$environment"
  if ! pid_alive airflow; then
    # The LocalExecutor copies every task log into the components' output: keep it to two files.
    if [ -f "$LOGS/airflow.log" ] && [ "$(stat -c %s "$LOGS/airflow.log")" -gt $((64 * 1024 * 1024)) ]; then
      mv -f "$LOGS/airflow.log" "$LOGS/airflow.log.1"
    fi
    # Migrate the metadata database, then the four components in one process group; when one
    # ends, the group ends, so a half-running Airflow never looks healthy. Not `airflow
    # standalone`: its scheduler and triggerer would serve logs on every interface (8793, 8794),
    # and with the LocalExecutor the api-server reads task logs from the local files anyway.
    start_service airflow 127.0.0.1 "$AIRFLOW_PORT" bash -c 'airflow db migrate &&
      { airflow api-server & airflow scheduler --skip-serve-logs & airflow dag-processor &
        airflow triggerer --skip-serve-logs & wait -n; kill 0; }'
  else
    echo "airflow: already running (pid $(cat "$PIDS/airflow.pid"), $AIRFLOW_URL)"
  fi
  wait_for airflow 127.0.0.1 "$AIRFLOW_PORT" "$START_TIMEOUT" health
  say "airflow healthy in $((SECONDS - started))s: UI $AIRFLOW_URL (user $AIRFLOW_ADMIN_USER, password in .env), log .state/logs/airflow.log"
}

stop() {
  [ -f "$PIDS/airflow.pid" ] || { echo "airflow: not running"; return 0; }
  local group; group="$(cat "$PIDS/airflow.pid")"
  # TERM to the whole process group: the four components, task workers, spark-submit.
  stop_service airflow
  # The components finish shutting down after the group leader has gone: wait for the group.
  for _ in $(seq 1 60); do kill -0 -- "-$group" 2>/dev/null || return 0; sleep 0.5; done
  echo "airflow: process group $group still alive after 30s; killing it"
  kill -KILL -- "-$group" 2>/dev/null || true
}

status() {
  if pid_alive airflow; then
    echo "airflow: running (pid $(cat "$PIDS/airflow.pid"), $AIRFLOW_URL)"
    health || true
  else
    echo "airflow: stopped"
  fi
}

# Start a run of a DAG now, through the REST API with a token for the admin user.
trigger() {
  local dag="${1:?usage: local/airflow.sh trigger DAG}"
  AIRFLOW_URL="$AIRFLOW_URL" "$PY" - "$dag" <<'PY'
import json, os, sys, urllib.request
from urllib.error import HTTPError

url, dag = os.environ["AIRFLOW_URL"], sys.argv[1]


def call(method: str, path: str, body: dict, token: str = "") -> dict:
    request = urllib.request.Request(f"{url}{path}", method=method, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except HTTPError as error:
        sys.exit(f"error: {method} {url}{path}: HTTP {error.code} {error.read().decode()[:300]}")


token = call("POST", "/auth/token", {"username": os.environ["AIRFLOW_ADMIN_USER"],
                                     "password": os.environ["AIRFLOW_ADMIN_PASSWORD"]})["access_token"]
run = call("POST", f"/api/v2/dags/{dag}/dagRuns", {"logical_date": None}, token)
print(f"{dag}: triggered run {run['dag_run_id']} ({url}/dags/{dag}/runs/{run['dag_run_id']})")
PY
}

# Sourced (by a test): only define the functions.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  trigger) shift; trigger "$@" ;;
  *) die "usage: local/airflow.sh start|stop|status|trigger DAG" ;;
esac
