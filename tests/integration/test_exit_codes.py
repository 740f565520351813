"""Exit codes that mean what they say, against the real PostgreSQL and MariaDB.

A scheduler retries exit 3 only: a wrong password or an unknown database fails the same way
every time (exit 1, naming server, user and database), a server that does not answer may come
back (exit 3), and a missing `.env` key is a configuration error (exit 2, naming the key).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from runner import config
from runner.errors import Rejected, Unreachable

ROOT = config.ROOT
TIMEOUT = 300  # seconds; a bound for a hung process, not a performance assertion

# The pipeline whose target each database kind is: the run fails at its lock, before Spark works.
PIPELINE_OF_TARGET = {"mysql": "marts", "postgresql": "stream"}
PREFIX = {"mysql": "MYSQL_APP", "postgresql": "POSTGRESQL_APP"}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(command: list[str], **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "SPARK_MASTER_URL": "local[*]", **env}
    return subprocess.run(command, cwd=ROOT, env={k: v for k, v in environ.items() if v is not None},
                          capture_output=True, text=True, timeout=TIMEOUT)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if "error:" in line]


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_a_wrong_password_exits_1_naming_server_and_user_without_the_password(kind):
    wrong = f"wrong-{uuid.uuid4().hex}"
    result = run([sys.executable, "-m", "runner", "run", PIPELINE_OF_TARGET[kind]],
                 **{f"{PREFIX[kind]}_PASSWORD": wrong})
    connection = config.connection(kind)
    assert result.returncode == 1, result.stderr
    [line] = error_lines(result)
    assert f"{kind} at {connection.address}" in line and f"user {connection.user}" in line, line
    assert "rejected" in line and f"{PREFIX[kind]}_PASSWORD" in line, line
    assert wrong not in result.stderr + result.stdout


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_an_unknown_database_exits_1_naming_it(kind):
    database = f"no_such_db_{uuid.uuid4().hex[:8]}"
    result = run([sys.executable, "-m", "runner", "run", PIPELINE_OF_TARGET[kind]],
                 **{f"{PREFIX[kind]}_DB": database})
    assert result.returncode == 1, result.stderr
    [line] = error_lines(result)
    assert f"database {database}" in line and "rejected" in line, line


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_a_port_nobody_listens_on_exits_3(kind):
    port = closed_port()
    result = run([sys.executable, "-m", "runner", "run", PIPELINE_OF_TARGET[kind]],
                 **{f"{PREFIX[kind]}_PORT": str(port)})
    assert result.returncode == 3, result.stderr
    [line] = error_lines(result)
    assert f"{config.connection(kind).host}:{port}" in line, line


def test_a_missing_env_key_exits_2_naming_the_key(tmp_path: Path):
    env_file = tmp_path / "missing-password.env"
    env_file.write_text("".join(line for line in (ROOT / ".env").read_text().splitlines(keepends=True)
                                if not line.startswith("MYSQL_APP_PASSWORD=")))
    result = run([sys.executable, "-m", "runner", "run", "marts"],
                 PLATFORM_ENV_FILE=str(env_file), MYSQL_APP_PASSWORD=None)
    assert result.returncode == 2, result.stderr
    [line] = error_lines(result)
    assert "MYSQL_APP_PASSWORD is not set" in line and str(env_file) in line, line


def test_the_postgres_generator_exits_1_on_a_wrong_password():
    result = run([sys.executable, "-m", "datagen.postgres"], POSTGRESQL_APP_PASSWORD=f"wrong-{uuid.uuid4().hex}")
    assert result.returncode == 1, result.stderr
    assert "rejected" in result.stderr and "POSTGRESQL_APP_PASSWORD" in result.stderr, result.stderr


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_connect_tells_a_rejected_login_from_an_unreachable_server(kind):
    connection = config.connection(kind)
    with pytest.raises(Rejected) as rejected:
        dataclasses.replace(connection, password="wrong").connect()
    with pytest.raises(Unreachable) as unreachable:
        dataclasses.replace(connection, port=closed_port()).connect()
    assert (rejected.value.exit_code, unreachable.value.exit_code) == (1, 3)
    assert isinstance(unreachable.value, ConnectionError)  # callers that catch the built-in still do
