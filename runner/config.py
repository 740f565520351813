"""The platform's configuration: `.env` at the project root, overridden by the environment.

`.env` is read with docker compose's own rules, so compose, the runner, the generators and the
shell scripts (local/lib.sh runs this file with --export) see the same values:

- blank lines and lines starting with `#` are skipped; `export KEY=value` and spaces around
  `=` are allowed;
- unquoted values end at the line's end or at a ` #` (space, hash) comment; trailing
  whitespace is dropped; `#` without a space before it is part of the value (so is the `#` of
  `KEY= # x`: a value starts at its first non-blank character);
- `'single quotes'` are literal (only `\\'` is an escape); `"double quotes"` take the escapes
  `\\n \\t \\r \\\\ \\" \\$` and may span lines; a ` # comment` may follow the closing quote;
- in unquoted and double-quoted values `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
  `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?error}`, `${VAR?error}` are expanded from the
  environment, else from earlier lines; `$$` is a literal `$`; an unset variable is empty.

A variable set in the environment wins over `.env`.

Example:
    >>> parse_dotenv('export HOST = db  # the server\\n'
    ...              'URL="jdbc:postgresql://${HOST}:${PORT:-5432}/x"\\n'
    ...              "RAW='${HOST}' # single quotes are literal\\n"
    ...              'TAG=a#b', environ={})
    {'HOST': 'db', 'URL': 'jdbc:postgresql://db:5432/x', 'RAW': '${HOST}', 'TAG': 'a#b'}
    >>> Connection("mysql", "mysql", "localhost", 3306, "mysql_finals_db", user="u", password="secret")
    Connection(mysql://u:***@localhost:3306/mysql_finals_db)

Run as a script (`python runner/config.py --export`, standard library only) it prints every
`.env` key with its effective value as shell-safe `export KEY='value'` lines.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

if __package__ in (None, ""):
    # Run as a plain script (local/lib.sh, possibly on the system python3 before the virtual
    # environment exists): the project root replaces runner/ on the path.
    sys.path[0] = str(ROOT)

from runner.errors import ConfigError, Rejected, Unreachable, one_line  # noqa: E402

ENV_FILE = Path(os.environ.get("PLATFORM_ENV_FILE", ROOT / ".env"))

__all__ = ["ROOT", "ENV_FILE", "ConfigError", "Connection", "CONNECTIONS", "all_values", "connection",
           "env", "env_float", "env_int", "expand", "interpolate", "parse_dotenv", "read_dotenv"]

# --- reading .env ------------------------------------------------------------------------------
_ASSIGNMENT = re.compile(r"(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*")
_INHERITED = re.compile(r"(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*(?:\r?\n|$)")
_AFTER_QUOTE = re.compile(r"[ \t\r]*(?:#[^\n]*)?(?:\n|$)")
_ESCAPE = re.compile(r"\\(?:[abcfnrtv$\"\\]|0\d{0,3})")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            '"': '"', "\\": "\\", "$": "$$"}  # `\$` becomes `$$`, which interpolation keeps as `$`
_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_BRACED = re.compile(r"([_A-Za-z][_A-Za-z0-9]*)(?:(:?[-+?])(.*))?", re.S)


def parse_dotenv(text: str, environ: Mapping[str, str] | None = None, source: str = ".env") -> dict[str, str]:
    """The KEY=value pairs of a `.env` text, read as docker compose reads it (see the module).

    `environ` (default: the process environment) is looked up first for `$VAR`s, then earlier
    lines. A line that is not `KEY=value` with a key a shell can export (compose would also take
    `KEY: value` and dotted keys), an unclosed quote or a bad `${...}` raises ConfigError naming
    `source:line`.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}

    def lookup(name: str) -> str | None:  # compose's order: the environment, then earlier lines
        return environ.get(name, values.get(name))

    text = text.removeprefix("\ufeff")
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return values
        line = text.count("\n", 0, pos) + 1
        where = f"{source}:{line}"
        if text[pos] == "#":
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end
            continue
        inherited = _INHERITED.match(text, pos)
        if inherited:  # a bare KEY takes its value from the environment, as in compose
            if inherited.group(1) in environ:
                values[inherited.group(1)] = environ[inherited.group(1)]
            pos = inherited.end()
            continue
        match = _ASSIGNMENT.match(text, pos)
        if not match:
            raise ConfigError(f"{where}: expected KEY=value (KEY of letters, digits and _), "
                              f"got {text[pos:].splitlines()[0]!r}")
        key, pos = match.group(1), match.end()
        if pos < len(text) and text[pos] in "'\"":
            value, pos = _quoted(text, pos, where)
            if text[match.end()] == '"':
                value = interpolate(_unescape(value), lookup, where)
            after = _AFTER_QUOTE.match(text, pos)
            if not after:
                raise ConfigError(f"{where}: {key}: unexpected text after the closing quote; "
                                  f"quote the whole value or put ` # ` before a comment")
            pos = after.end()
        else:
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            raw = text[pos:end].split(" #", 1)[0].rstrip()
            value, pos = interpolate(raw, lookup, where), end
        values[key] = value


def _quoted(text: str, start: int, where: str) -> tuple[str, int]:
    """The body of the quoted value at `start` (a backslash before the quote escapes it; other
    backslashes stay for _unescape) and the position after its closing quote."""
    quote, chars, escaped = text[start], [], False
    for i in range(start + 1, len(text)):
        char = text[i]
        if char == quote and not escaped:
            return "".join(chars), i + 1
        if char == "\\" and not escaped:
            escaped = True
            continue
        if escaped and char != quote:
            chars.append("\\")
        escaped = False
        chars.append(char)
    raise ConfigError(f"{where}: the value starting {text[start:].splitlines()[0]!r} has no closing {quote}")


def _unescape(value: str) -> str:
    def one(match: re.Match) -> str:
        code = match.group()[1:]
        if code[0] == "0":  # octal: \0 and exactly three octal digits, else kept as written
            digits = code[1:]
            if len(digits) == 3 and set(digits) <= set("01234567") and int(digits, 8) < 256:
                return chr(int(digits, 8))
            return match.group()
        return _ESCAPES.get(code, match.group())

    return _ESCAPE.sub(one, value)


def interpolate(text: str, lookup: Callable[[str], str | None], where: str = "",
                unset: Callable[[str], str] = lambda name: "") -> str:
    """`text` with compose's `$VAR` / `${VAR...}` forms replaced through `lookup` (None = unset).

    A plain reference to an unset variable becomes `unset(name)`: empty, as compose does, unless
    the caller wants an error. `where` prefixes error messages.

    Example:
        >>> interpolate("${A:-x}-${B:+y}-$$A-${C-${A}}", {"B": "1"}.get)
        'x-y-$A-'
    """
    out, i = [], 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            break
        out.append(text[i:dollar])
        following = text[dollar + 1:dollar + 2]
        name = _NAME.match(text, dollar + 1)
        if following == "$":
            out.append("$")
            i = dollar + 2
        elif name:
            value = lookup(name.group())
            out.append(unset(name.group()) if value is None else value)
            i = name.end()
        elif following == "{":
            close = _closing_brace(text, dollar + 1)
            braced = _BRACED.fullmatch(text, dollar + 2, close) if close > 0 else None
            if not braced:
                raise ConfigError(f"{where}: invalid variable reference in {text!r}".lstrip(": "))
            out.append(_substitute(*braced.groups(), lookup, where, unset))
            i = close + 1
        else:  # `$` before anything else is a `$`
            out.append("$")
            i = dollar + 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return -1


def _substitute(name: str, op: str | None, arg: str | None, lookup, where: str, unset) -> str:
    value = lookup(name)
    present = value is not None and (value != "" or not (op or "").startswith(":"))
    if op is None:
        return unset(name) if value is None else value
    if op.endswith("-"):
        return value if present else interpolate(arg, lookup, where, unset)
    if op.endswith("+"):
        return interpolate(arg, lookup, where, unset) if present else ""
    if not present:  # `?` and `:?`
        reason = interpolate(arg, lookup, where, unset)
        raise ConfigError(f"{where}: {name} is required{': ' + reason if reason else ''}".lstrip(": "))
    return value


def read_dotenv(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values of the `.env` file at `path` ({} if there is none); see parse_dotenv."""
    if environ is None:
        return _read_cached(Path(path), tuple(sorted(os.environ.items())))
    return parse_dotenv(path.read_text(), environ, _shown(path)) if path.exists() else {}


@lru_cache(maxsize=4)
def _read_cached(path: Path, environ: tuple[tuple[str, str], ...]) -> dict[str, str]:
    # Keyed on the environment too: its values take part in `${VAR}` expansion.
    return parse_dotenv(path.read_text(), dict(environ), _shown(path)) if path.exists() else {}


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# --- values ------------------------------------------------------------------------------------
def env(key: str, default: str | None = None) -> str:
    """The value of `key`: the environment wins over `.env`; a missing key raises ConfigError."""
    value = os.environ.get(key)
    if value is None:
        value = read_dotenv(ENV_FILE).get(key)
    if value is None or value == "":
        if default is not None:
            return default
        raise ConfigError(f"{key} is not set: add it to {_shown(ENV_FILE)} or the environment")
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
    return "from the environment" if key in os.environ else f"in {_shown(ENV_FILE)}"


def _required(name: str) -> str:
    raise ConfigError(f"{name} is not set: add it to {_shown(ENV_FILE)} or the environment")


def expand(text: str) -> str:
    """`text` with its `${VAR}`s replaced by configured values (compose's forms; an unset
    variable without a default raises ConfigError naming it)."""
    return interpolate(text, lambda name: env(name, "") or None, unset=_required)


def all_values() -> dict[str, str]:
    """Every key of `.env` with its effective value (environment first)."""
    return {key: os.environ.get(key, value) for key, value in read_dotenv(ENV_FILE).items()}


def shell_exports(values: Mapping[str, str]) -> str:
    """`export KEY='value'` lines that a shell evaluates back to exactly `values`.

    Example:
        >>> print(shell_exports({"PASSWORD": "it's $x"}))
        export PASSWORD='it'\\''s $x'
    """
    return "\n".join(f"export {key}={_shell_quoted(value)}" for key, value in values.items())


def _shell_quoted(value: str) -> str:
    # Inside single quotes a shell takes every character literally; a quote closes, escapes and reopens.
    return "'" + value.replace("'", "'\\''") + "'"


# --- connections -------------------------------------------------------------------------------
# MySQL's server errors that no retry fixes: access denied (to the server, to the database),
# unknown database, host not allowed, a plugin-only account.
_MYSQL_REJECTED = {1044, 1045, 1049, 1130, 1251, 1698}
# PostgreSQL's FATAL answers to a login that no retry fixes (libpq gives no SQLSTATE for them).
_PG_REJECTED = re.compile(r"authentication failed|no pg_hba\.conf entry|does not exist|"
                          r"not permitted to log in|password is required|no password supplied")
# The .env keys of each database connection, for messages that say what to fix.
_KEYS = {"postgresql": "POSTGRESQL_APP", "mysql": "MYSQL_APP"}


# Timeouts of every database connection, so that no step waits for ever (seconds). A server that
# does not answer fails the connect in 10 s. A statement may run an hour: the longest legitimate
# ones (an INSERT..SELECT publishing a big table, a copy of an appended table, a COPY of
# generated data) take seconds to minutes here, and a bound far above them still ends a hang.
# Keepalives find a peer that vanished while the connection is idle (the run lock's connection).
CONNECT_TIMEOUT = 10
STATEMENT_TIMEOUT = 3600
WRITE_TIMEOUT = 300  # pymysql: one send to the server (a query, a LOAD DATA chunk)


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
        # pgjdbc counts seconds, Connector/J milliseconds.
        scale = 1 if self.kind == "postgresql" else 1000
        return {"user": self.user, "password": self.password, "driver": driver,
                "connectTimeout": str(CONNECT_TIMEOUT * scale), "socketTimeout": str(STATEMENT_TIMEOUT * scale),
                "tcpKeepAlive": "true"}

    def __repr__(self) -> str:
        return f"Connection({self.redacted()})"

    def redacted(self) -> str:
        if self.kind == "kafka":
            return f"kafka://{self.servers}"
        return f"{self.kind}://{self.user}:***@{self.host}:{self.port}/{self.database}"

    def connect(self, **kwargs: Any):
        """A DB-API connection (psycopg2 or pymysql).

        A server that refuses the login or has no such database raises Rejected (exit 1: a retry
        fails the same way); one that cannot be reached raises Unreachable (exit 3). Both name
        the host:port, the database and the user.
        """
        if self.kind not in _KEYS:
            raise ConfigError(f"connection {self.name!r} ({self.kind}) is not a database")
        try:
            if self.kind == "postgresql":
                import psycopg2

                return psycopg2.connect(
                    host=self.host, port=self.port, dbname=self.database, user=self.user,
                    password=self.password, **{
                        "connect_timeout": CONNECT_TIMEOUT, "keepalives": 1, "keepalives_idle": 30,
                        "keepalives_interval": 10, "keepalives_count": 3,
                        "options": f"-c search_path={self.schema} -c statement_timeout={STATEMENT_TIMEOUT}s",
                        **kwargs})
            import pymysql

            return pymysql.connect(
                host=self.host, port=self.port, database=self.database, user=self.user,
                password=self.password, autocommit=False, **{
                    "connect_timeout": CONNECT_TIMEOUT, "read_timeout": STATEMENT_TIMEOUT,
                    "write_timeout": WRITE_TIMEOUT, **kwargs})
        except Exception as error:  # the drivers raise their own classes; make the cause actionable
            where = f"{self.kind} at {self.address} (database {self.database}, user {self.user})"
            if self._rejected(error):
                keys = ", ".join(f"{_KEYS[self.kind]}_{key}" for key in ("USER", "PASSWORD", "DB"))
                raise Rejected(f"{where} rejected the connection: {one_line(error)} (check {keys}; "
                               "retrying will not help)") from None
            raise Unreachable(f"cannot connect to {where}: {one_line(error)}") from None

    def _rejected(self, error: Exception) -> bool:
        if self.kind == "mysql":
            return bool(error.args) and error.args[0] in _MYSQL_REJECTED
        return "FATAL" in str(error) and bool(_PG_REJECTED.search(str(error)))

    def reachable(self, timeout: float = 3.0) -> bool:
        """True if a TCP connection to the (first) address succeeds."""
        host, _, port = self.address.split(",")[0].rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return True
        except OSError:
            return False


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

LOOPBACK = "127.0.0.1"


def jvm_on_loopback() -> None:
    """Make the JVMs this process starts bind and advertise loopback by address, never by this
    machine's host name, which may not resolve (a container, a chroot); a value the user set wins."""
    os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)


def main(argv: list[str] | None = None) -> int:
    """`--export`: the effective value of every `.env` key as shell `export` lines."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["--export"]:
        print("usage: python runner/config.py --export", file=sys.stderr)
        return 2
    try:
        if not ENV_FILE.exists():
            raise ConfigError(f"{ENV_FILE} does not exist: it is the platform's configuration file")
        print(shell_exports(all_values()))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
