"""Issue 13, sections 5 and 6 on the real services: a password with every awkward character works
through database init, a runner run and Airflow's connections; a runner run and the services
listen on loopback only; `.state` is its owner's only; MySQL keeps no account without a password.

Scratch users, databases and tables have unique names and are removed; the shared users'
passwords are never changed (the scratch values reach the scripts through the environment,
which wins over .env).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pymysql
import pytest

from runner import config
from tests.fixtures.runner.pipelines import settings_toml, write_pipeline

ROOT = config.ROOT
PYTHON = str(ROOT / ".venv" / "bin" / "python")
# Every character issue 13 names, and the ones a shell, compose, JSON or a URI would also eat.
PASSWORD = "p\\a'ss\"w$rd#1@h/x%41 ${HOME}`id`;--"


def run(command: list[str], env: dict[str, str], timeout: float = 300, stdin: str | None = None):
    return subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, input=stdin, capture_output=True,
                          text=True, timeout=timeout, check=False)


def as_superusers(sql_pg: str = "", sql_mysql: str = "") -> None:
    """Run SQL as the PostgreSQL and MySQL superusers through their sockets (lib.sh), on stdin."""
    for function, sql in (("pg_superuser_psql -d postgres", sql_pg), ("mysql_root", sql_mysql)):
        if sql:
            result = run(["bash", "-c", f'source local/lib.sh && {function}'], {}, 60, sql)
            assert result.returncode == 0, result.stderr


@pytest.fixture
def scratch() -> Iterator[dict[str, str]]:
    """The environment of a scratch app user with PASSWORD, on its own databases; dropped after."""
    tag = uuid.uuid4().hex[:8]
    env = {
        "POSTGRESQL_APP_USER": f"scratch_pw_{tag}", "POSTGRESQL_APP_PASSWORD": PASSWORD,
        "POSTGRESQL_APP_DB": f"scratch_pw_db_{tag}", "POSTGRESQL_APP_SCHEMA": f"scratch_pw_schema_{tag}",
        "MYSQL_APP_USER": f"scratch_pw_{tag}", "MYSQL_APP_PASSWORD": PASSWORD, "MYSQL_APP_DB": f"scratch_pw_db_{tag}",
    }
    try:
        yield env
    finally:
        as_superusers(
            f'drop database if exists "{env["POSTGRESQL_APP_DB"]}" with (force);\n'
            f'drop role if exists "{env["POSTGRESQL_APP_USER"]}";\n',
            f"drop database if exists `{env['MYSQL_APP_DB']}`;\n"
            f"drop user if exists '{env['MYSQL_APP_USER']}'@'%';\n")


def pg_connect(env: dict[str, str]):
    return psycopg2.connect(host=config.env("POSTGRESQL_APP_HOST"), port=int(config.env("POSTGRESQL_APP_PORT")),
                            dbname=env["POSTGRESQL_APP_DB"], user=env["POSTGRESQL_APP_USER"],
                            password=env["POSTGRESQL_APP_PASSWORD"], connect_timeout=10,
                            options=f"-c search_path={env['POSTGRESQL_APP_SCHEMA']}")


def mysql_connect(env: dict[str, str]):
    return pymysql.connect(host=config.env("MYSQL_APP_HOST"), port=int(config.env("MYSQL_APP_PORT")),
                           database=env["MYSQL_APP_DB"], user=env["MYSQL_APP_USER"],
                           password=env["MYSQL_APP_PASSWORD"], connect_timeout=10)


def test_a_password_with_every_special_character_works_through_init_runner_and_airflow(scratch, tmp_path):
    env = scratch
    init = run(["bash", "local/initdb.sh", "postgresql", "mysql"], env)
    assert init.returncode == 0, init.stdout + init.stderr
    assert PASSWORD not in init.stdout + init.stderr

    # The init set exactly this password (MySQL's used to lose the backslash): log in with it.
    with pg_connect(env) as pg, pg.cursor() as cursor:
        cursor.execute("create table scratch_src (id integer primary key, note varchar(50))")
        cursor.execute("insert into scratch_src values (1, %s), (2, %s)", ("it's", 'a "quote" \\ back'))
    pg.close()
    mysql_connect(env).close()

    pipeline = write_pipeline(tmp_path / "scratch_pw", {
        "010_scratch_copy.sql": "-- keys: id\nselect id, note from scratch_src\n",
    }, settings_toml(source="postgresql", tables=("scratch_src",), target="mysql"))
    result = run([PYTHON, "-m", "runner", "run", str(pipeline)], env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert PASSWORD not in result.stdout + result.stderr, "the runner logged the password"
    with mysql_connect(env) as mysql, mysql.cursor() as cursor:
        cursor.execute("select id, note from scratch_copy order by id")
        assert cursor.fetchall() == ((1, "it's"), (2, 'a "quote" \\ back'))

    # Natively Airflow gets its connections from local/airflow.sh: what it would export, read
    # back the way Airflow reads AIRFLOW_CONN_* (its environment-variables backend).
    script = ('source local/airflow.sh && export ROOT AIRFLOW_HOME="$SCRATCH_HOME" && '
              'environment="$(airflow_environment)" && eval "$environment" && '
              '"$PY" -c \'import json, os; print(json.dumps('
              '{k: v for k, v in os.environ.items() if k.startswith("AIRFLOW_CONN_")}))\'')
    (tmp_path / "airflow").mkdir()
    rendered = run(["bash", "-c", script], {**env, "SCRATCH_HOME": str(tmp_path / "airflow")}, 60)
    assert rendered.returncode == 0, rendered.stderr
    check = ("import json, os, sys\n"
             "os.environ.update(json.load(sys.stdin))\n"
             "from airflow.secrets.environment_variables import EnvironmentVariablesBackend\n"
             "backend = EnvironmentVariablesBackend()\n"
             "print(json.dumps({c: [backend.get_connection(c).login, backend.get_connection(c).password]"
             " for c in ('postgresql', 'mysql')}))\n")
    seen = run([PYTHON, "-c", check], {"AIRFLOW_HOME": str(tmp_path / "airflow")}, 120, rendered.stdout)
    assert seen.returncode == 0, seen.stderr[-2000:]
    assert json.loads(seen.stdout.strip().splitlines()[-1]) == {
        "postgresql": [env["POSTGRESQL_APP_USER"], PASSWORD], "mysql": [env["MYSQL_APP_USER"], PASSWORD]}


def test_initdb_drops_mysql_accounts_that_need_no_password():
    # Host 192.0.2.1 (TEST-NET): no client here matches these accounts while they exist.
    tag = uuid.uuid4().hex[:8]
    as_superusers(sql_mysql=f"create user ''@'192.0.2.1'; create user 'scratch_nopw_{tag}'@'192.0.2.1';")
    try:
        init = run(["bash", "local/initdb.sh", "mysql"], {})
        assert init.returncode == 0, init.stdout + init.stderr
        listed = run(["bash", "-c", "source local/lib.sh && mysql_root -N -B"], {}, 60,
                     "select user, host from mysql.global_priv where host = '192.0.2.1'")
        assert listed.returncode == 0 and listed.stdout.strip() == "", listed.stdout + listed.stderr
        assert "dropping the account ''@'192.0.2.1'" in init.stdout
    finally:
        as_superusers(sql_mysql=f"drop user if exists ''@'192.0.2.1', 'scratch_nopw_{tag}'@'192.0.2.1';")


def test_state_folder_is_readable_by_its_owner_only():
    result = run(["bash", "-c", "source local/lib.sh"], {}, 60)
    assert result.returncode == 0, result.stderr
    assert oct((ROOT / ".state").stat().st_mode & 0o777) == "0o700"


# --- listeners ---------------------------------------------------------------------------------
_LISTENER = re.compile(r"^LISTEN\s+\d+\s+\d+\s+(?P<address>\S+):(?P<port>\d+)\s+\S+\s+users:\((?P<users>.*)\)$")
_LOOPBACK = ("127.", "::1", "::ffff:127.")


def process_group(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def listeners() -> list[tuple[str, int, int, str]]:
    """(address, port, pid, command) of every listening TCP socket, from `ss -ltnpH`."""
    found = []
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=10, check=True).stdout
    for line in out.splitlines():
        match = _LISTENER.match(line.strip())
        if not match:
            continue
        for command, pid in re.findall(r'\("([^"]+)",pid=(\d+)', match["users"]):
            found.append((match["address"].strip("[]"), int(match["port"]), int(pid), command))
    return found


def ours(groups: set[int]) -> list[tuple[str, int, int, str]]:
    """Listeners of the given process groups, each as (address, port, group, command)."""
    return [(address, port, group, command) for address, port, pid, command in listeners()
            if (group := process_group(pid)) in groups]


def test_a_runner_run_and_the_services_listen_on_loopback_only(tmp_path):
    # The services run in their own sessions (setsid): their PID files name their process groups.
    services = {int(p.read_text()) for p in (ROOT / ".state" / "pids").glob("*.pid") if p.read_text().strip()}
    probe = f"loopback_probe_{uuid.uuid4().hex[:8]}"
    pipeline = write_pipeline(tmp_path / "loopback", {
        f"010_{probe}.sql": "-- keys: user_id\nselect user_id, email from users where user_id <= 100\n",
    }, settings_toml(source="postgresql", tables=("users",), target="mysql"))
    runner = subprocess.Popen([PYTHON, "-m", "runner", "run", str(pipeline)], cwd=ROOT, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: set[tuple[str, int, int, str]] = set()
    try:
        while runner.poll() is None:
            seen |= set(ours(services | {runner.pid}))
            time.sleep(0.2)
        output = runner.stdout.read()
        assert runner.returncode == 0, output[-3000:]
    finally:
        if runner.poll() is None:
            runner.kill()
        with pymysql.connect(host=config.env("MYSQL_APP_HOST"), port=int(config.env("MYSQL_APP_PORT")),
                             database=config.env("MYSQL_APP_DB"), user=config.env("MYSQL_APP_USER"),
                             password=config.env("MYSQL_APP_PASSWORD"), connect_timeout=10) as mysql:
            with mysql.cursor() as cursor:
                cursor.execute(f"drop table if exists `{probe}`")
    driver = {port for _, port, group, _ in seen if group == runner.pid}
    assert driver, "no listener of the run's Spark driver was seen"
    assert int(config.env("POSTGRESQL_APP_PORT")) in {port for _, port, _, _ in seen}, seen
    exposed = sorted(entry for entry in seen if not entry[0].startswith(_LOOPBACK))
    assert not exposed, f"listening beyond loopback (address, port, process group, command): {exposed}"
    assert 4040 not in driver, "the driver's UI is on although SPARK_UI_ENABLED is not set"
