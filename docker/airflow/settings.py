"""Airflow's secrets and metadata URL in compose, built from .env so that quoting is always right.

Every Airflow container reads its sensitive settings through `AIRFLOW__..._CMD` variables that
run this file (see docker-compose.yml): values never sit in a command line or in a log.

Example:
    $ python docker/airflow/settings.py init /opt/airflow/secrets   # airflow-init, every start
    $ python docker/airflow/settings.py metadata-url                # AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD
    postgresql+psycopg2://finals_user:finals_pass@postgresql:5432/airflow_db
    $ python docker/airflow/settings.py secret /opt/airflow/secrets/jwt_secret
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
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
    """Dispatch `init DIR`, `metadata-url` or `secret FILE`."""
    command, *args = argv or ["help"]
    if command == "init" and len(args) == 1:
        init(Path(args[0]))
    elif command == "metadata-url" and not args:
        sys.stdout.write(metadata_url())
    elif command == "secret" and len(args) == 1:
        sys.stdout.write(secret(Path(args[0])))
    else:
        raise SystemExit("usage: settings.py init DIR | metadata-url | secret FILE")


if __name__ == "__main__":
    main(sys.argv[1:])
