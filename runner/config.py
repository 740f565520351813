"""The platform's configuration: `.env` at the project root, overridden by the environment.

Example:
    >>> from runner import config
    >>> config.env("KAFKA_TOPIC_NAME")
    'new_users_events'
    >>> config.connection("mysql")
    Connection(mysql://finals_user:***@localhost:3306/mysql_finals_db)
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = Path(os.environ.get("PLATFORM_ENV_FILE", ROOT / ".env"))

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message names the key."""


@lru_cache(maxsize=None)
def _dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        match = _LINE.match(line)
        if match:
            key, value = match.groups()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[key] = value
    return values


def env(key: str, default: str | None = None) -> str:
    """The value of `key`: the environment wins over `.env`; a missing key raises ConfigError."""
    value = os.environ.get(key)
    if value is None:
        value = _dotenv(ENV_FILE).get(key)
    if value is None or value == "":
        if default is not None:
            return default
        raise ConfigError(f"{key} is not set: add it to {ENV_FILE} or the environment")
    return value


def env_int(key: str, default: int | None = None) -> int:
    """`key` as a non-negative integer, or ConfigError naming the key and its bad value."""
    return _non_negative(key, default, int)


def env_float(key: str, default: float | None = None) -> float:
    """`key` as a non-negative number, or ConfigError naming the key and its bad value."""
    return _non_negative(key, default, float)


def _non_negative(key: str, default, kind: type):
    raw = env(key, None if default is None else str(default))
    try:
        value = kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{key}={raw!r} ({_origin(key)}) is not {what}") from None
    if value < 0:
        raise ConfigError(f"{key}={raw!r} ({_origin(key)}) must not be negative")
    return value


def _origin(key: str) -> str:
    return "from the environment" if key in os.environ else f"in {ENV_FILE}"


def expand(text: str) -> str:
    """Replace each `${VAR}` in `text` with its configured value."""
    return _VAR.sub(lambda m: env(m.group(1)), text)


def all_values() -> dict[str, str]:
    """Every key of `.env` with its effective value (environment first)."""
    return {key: env(key, "") for key in _dotenv(ENV_FILE)}


@dataclass(frozen=True)
class Connection:
    """Where one named system lives, and how to reach it. The password never prints."""

    name: str
    kind: str  # postgresql | mysql | kafka
    host: str
    port: int
    database: str = ""
    schema: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    servers: str = ""  # kafka bootstrap servers

    @property
    def address(self) -> str:
        return self.servers if self.kind == "kafka" else f"{self.host}:{self.port}"

    @property
    def jdbc_url(self) -> str:
        """JDBC URL without credentials (they go in as properties)."""
        if self.kind == "postgresql":
            return (f"jdbc:postgresql://{self.host}:{self.port}/{self.database}"
                    f"?currentSchema={self.schema}&reWriteBatchedInserts=true")
        if self.kind == "mysql":
            # jdbc:mysql: even against MariaDB: Spark picks its MySQL dialect from this prefix.
            return (f"jdbc:mysql://{self.host}:{self.port}/{self.database}"
                    "?rewriteBatchedStatements=true&useSSL=false&allowPublicKeyRetrieval=true"
                    "&connectionTimeZone=UTC&forceConnectionTimeZoneToSession=true")
        raise ConfigError(f"connection {self.name!r} ({self.kind}) has no JDBC URL")

    @property
    def jdbc_properties(self) -> dict[str, str]:
        driver = {"postgresql": "org.postgresql.Driver", "mysql": "com.mysql.cj.jdbc.Driver"}[self.kind]
        return {"user": self.user, "password": self.password, "driver": driver}

    def __repr__(self) -> str:
        return f"Connection({self.redacted()})"

    def redacted(self) -> str:
        if self.kind == "kafka":
            return f"kafka://{self.servers}"
        return f"{self.kind}://{self.user}:***@{self.host}:{self.port}/{self.database}"

    def connect(self, **kwargs: Any):
        """A DB-API connection (psycopg2 or pymysql); unreachable -> ConnectionError naming host:port."""
        try:
            if self.kind == "postgresql":
                import psycopg2

                return psycopg2.connect(
                    host=self.host, port=self.port, dbname=self.database, user=self.user,
                    password=self.password, connect_timeout=10,
                    options=f"-c search_path={self.schema}", **kwargs)
            if self.kind == "mysql":
                import pymysql

                return pymysql.connect(
                    host=self.host, port=self.port, database=self.database, user=self.user,
                    password=self.password, connect_timeout=10, autocommit=False, **kwargs)
        except Exception as error:  # the drivers raise their own classes; make the cause actionable
            raise ConnectionError(
                f"cannot connect to {self.kind} at {self.address} (database {self.database}, "
                f"user {self.user}): {_first_line(error)}") from None
        raise ConfigError(f"connection {self.name!r} ({self.kind}) is not a database")

    def reachable(self, timeout: float = 3.0) -> bool:
        """True if a TCP connection to the (first) address succeeds."""
        host, _, port = self.address.split(",")[0].rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return True
        except OSError:
            return False


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def connection(name: str) -> Connection:
    """The named connection (`postgresql`, `mysql`, `kafka`) from the configuration."""
    if name == "postgresql":
        return Connection(
            name, "postgresql", env("POSTGRESQL_APP_HOST"), env_int("POSTGRESQL_APP_PORT"),
            env("POSTGRESQL_APP_DB"), env("POSTGRESQL_APP_SCHEMA"),
            env("POSTGRESQL_APP_USER"), env("POSTGRESQL_APP_PASSWORD"))
    if name == "mysql":
        return Connection(
            name, "mysql", env("MYSQL_APP_HOST"), env_int("MYSQL_APP_PORT"),
            env("MYSQL_APP_DB"), env("MYSQL_APP_DB"), env("MYSQL_APP_USER"), env("MYSQL_APP_PASSWORD"))
    if name == "kafka":
        servers = env("KAFKA_BOOTSTRAP_SERVERS")
        host, _, port = servers.split(",")[0].rpartition(":")
        return Connection(name, "kafka", host, int(port or 9092), servers=servers)
    raise ConfigError(f"unknown connection {name!r}: use postgresql, mysql or kafka")


CONNECTIONS = ("postgresql", "mysql", "kafka")
