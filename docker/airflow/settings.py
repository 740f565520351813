"""Airflow's secrets, metadata URL and connections, built from .env so that quoting is always right.

Every Airflow container reads its sensitive settings through `AIRFLOW__..._CMD` variables that
run this file (see docker-compose.yml): values never sit in a command line or in a log. Its
connections (`AIRFLOW_CONN_*`, JSON built here: compose would paste a password raw into the JSON)
are exported by docker/airflow/entrypoint.sh; local/airflow.sh builds the native ones with the
same `connections()`.

Example:
    $ python docker/airflow/settings.py init /opt/airflow/secrets   # airflow-init, every start
    $ python docker/airflow/settings.py metadata-url                # AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD
    postgresql+psycopg2://finals_user:finals_pass@postgresql:5432/airflow_db
    $ python docker/airflow/settings.py secret /opt/airflow/secrets/jwt_secret
    $ eval "$(python docker/airflow/settings.py connections)"     # entrypoint.sh: export AIRFLOW_CONN_*
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

# Random values made once per deployment and shared by every component through a volume: the
# scheduler signs task tokens the api-server must verify, and all components must decrypt the
# same connections and variables. Each with the shortest value still accepted (HS512 JWTs want a
# key of 64 bytes or more); a shorter one found in the volume is replaced.
GENERATED = {
    "jwt_secret": (lambda: secrets.token_urlsafe(64), 64),
    "api_secret_key": (lambda: secrets.token_urlsafe(32), 32),
    "fernet_key": (lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(), 44),
}


def env(key: str) -> str:
    """The value of `key` from the container's environment (compose's env_file: .env)."""
    value = os.environ.get(key)
    if not value:
        raise SystemExit(f"{key} is not set: add it to .env")
    return value


def metadata_url() -> str:
    """The SQLAlchemy URL of Airflow's metadata database (AIRFLOW_DB) in the platform's PostgreSQL."""
    user = quote(env("AIRFLOW_DB_USER"), safe="")
    password = quote(env("AIRFLOW_DB_PASSWORD"), safe="")
    host, port, database = env("POSTGRESQL_APP_HOST"), env("POSTGRESQL_APP_PORT"), env("AIRFLOW_DB")
    return f"postgresql+psycopg2://{user}:{password}@{host}:{port}/{quote(database, safe='')}"


def connections(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The platform's Airflow connections as `AIRFLOW_CONN_*` values in Airflow's JSON form,
    serialized by json.dumps so that any character of a password survives (a URI would need
    percent-encoding; the JSON form also keeps `spark://local[*]` parseable)."""
    def value(key: str) -> str:
        if not environ.get(key):
            raise SystemExit(f"{key} is not set: add it to .env")
        return environ[key]

    return {
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": value("SPARK_MASTER_URL")}),
        "AIRFLOW_CONN_POSTGRESQL": json.dumps({
            "conn_type": "postgres", "host": value("POSTGRESQL_APP_HOST"), "port": int(value("POSTGRESQL_APP_PORT")),
            "schema": value("POSTGRESQL_APP_DB"), "login": value("POSTGRESQL_APP_USER"),
            "password": value("POSTGRESQL_APP_PASSWORD"),
            "extra": {"options": f"-c search_path={value('POSTGRESQL_APP_SCHEMA')}"}}),
        "AIRFLOW_CONN_MYSQL": json.dumps({
            "conn_type": "mysql", "host": value("MYSQL_APP_HOST"), "port": int(value("MYSQL_APP_PORT")),
            "schema": value("MYSQL_APP_DB"), "login": value("MYSQL_APP_USER"),
            "password": value("MYSQL_APP_PASSWORD")}),
    }


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only."""
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(text)


def init(directory: Path) -> None:
    """Create the shared secrets once, and (re)write the admin's password file from .env.

    The simple auth manager reads the password of each user in
    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS from this file; writing it before the api-server
    starts keeps Airflow from generating a random one, and rewriting it on every start applies a
    password changed in .env.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, (make, shortest) in GENERATED.items():
        path = directory / name
        if not path.exists() or len(path.read_text().strip()) < shortest:
            write_private(path, make())
    admin = {env("AIRFLOW_ADMIN_USER"): env("AIRFLOW_ADMIN_PASSWORD")}
    write_private(directory / "passwords.json", json.dumps(admin) + "\n")
    print(f"airflow-init: secrets ready in {directory}; admin user {next(iter(admin))}")


def secret(path: Path) -> str:
    """The content of a secret file made by `init`, or a one-line error naming the file."""
    try:
        value = path.read_text().strip()
    except OSError as error:
        raise SystemExit(f"{path}: {error.strerror}; airflow-init creates it, so run it first") from None
    if not value:
        raise SystemExit(f"{path} is empty; rerun airflow-init")
    return value


def main(argv: list[str]) -> None:
    """Dispatch `init DIR`, `metadata-url`, `secret FILE` or `connections`."""
    command, *args = argv or ["help"]
    if command == "init" and len(args) == 1:
        init(Path(args[0]))
    elif command == "metadata-url" and not args:
        sys.stdout.write(metadata_url())
    elif command == "secret" and len(args) == 1:
        sys.stdout.write(secret(Path(args[0])))
    elif command == "connections" and not args:
        # `export` lines for the entrypoint's eval, each value shell-quoted.
        sys.stdout.write("".join(f"export {k}={shlex.quote(v)}\n" for k, v in connections().items()))
    else:
        raise SystemExit("usage: settings.py init DIR | metadata-url | secret FILE | connections")


if __name__ == "__main__":
    main(sys.argv[1:])
