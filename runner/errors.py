"""The runner's failures, each with the exit code that tells a scheduler whether to retry.

Standard library only: `runner/config.py` imports it when it runs as a plain script, before
the project's virtual environment exists.

Example:
    >>> error = Unreachable("cannot reach mysql at localhost:3306: Connection refused")
    >>> error.exit_code, isinstance(error, ConnectionError)
    (3, True)
    >>> ConfigError("MYSQL_APP_PASSWORD is not set").exit_code
    2
    >>> one_line(ValueError("bad password=s3cret in the URL\\nat line 2"))
    'bad password=*** in the URL'
"""

from __future__ import annotations

import re


class RunnerError(Exception):
    """The run failed (bad SQL at run time, a failed check, a failed publish, a database that
    refused the login or does not have the database): exit 1, no retry."""

    exit_code = 1


class InvalidPipeline(RunnerError):
    """The pipeline did not validate, or the command was wrong: exit 2, no retry."""

    exit_code = 2


class ConfigError(InvalidPipeline):
    """A configuration value is missing or malformed; the message names the key: exit 2."""


class Rejected(RunnerError):
    """A server answered and refused: wrong user or password, unknown database. Exit 1, since
    retrying with the same settings fails the same way."""


class Retryable(RunnerError):
    """A transient failure: exit 3, worth a retry."""

    exit_code = 3


class Unreachable(Retryable, ConnectionError):
    """A database or broker could not be reached (refused, timed out, unknown host). Also a
    ConnectionError, so code that catches the built-in keeps catching it."""


class Busy(Retryable):
    """Another run of the same pipeline holds its lock."""


_UNREACHABLE = re.compile(
    r"Connection refused|Communications link failure|UnknownHostException|could not connect|"
    r"Connection to \S+ refused|NoBrokersAvailable|TimeoutException|timed out", re.IGNORECASE)
_SPARK_LINE = re.compile(r"line (\d+),? pos(?:ition)? (\d+)|SQLSTATE: \w+\) line (\d+)")
# A quoted value is masked whole: a password may hold spaces, commas or quotes of the other kind.
_PASSWORD = re.compile(r"(password[\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&)]+)", re.IGNORECASE)


def one_line(error: BaseException) -> str:
    """The first meaningful line of an error (Spark's and Py4J's are long), with secrets masked.

    The one "first line of an error" helper of the project: use it wherever an error becomes a
    message.
    """
    text = str(error)
    java = re.search(r"(?:Exception|Error): (.+)", text) if "py4j" in type(error).__module__ else None
    lines = [line.strip() for line in (java.group(1) if java else text).splitlines() if line.strip()]
    return redact(lines[0] if lines else type(error).__name__)


def redact(text: str) -> str:
    """`text` with every `password=...` value masked.

    Example:
        >>> redact('user=finals_user password="pa ss" and PASSWORD: x')
        'user=finals_user password=*** and PASSWORD: ***'
    """
    return _PASSWORD.sub(r"\1***", text)


def spark_error_line(error: BaseException) -> int | None:
    """The SQL line a Spark parse or analysis error points at, if it gives one.

    Example:
        >>> spark_error_line(Exception("[PARSE_SYNTAX_ERROR] Syntax error at or near 'form'. "
        ...                            "SQLSTATE: 42601 (line 7, pos 4)"))
        7
    """
    match = _SPARK_LINE.search(str(error))
    if not match:
        return None
    return int(match.group(1) or match.group(3))


def is_unreachable(error: BaseException) -> bool:
    """True for a failure to reach a server: a ConnectionError or a driver's message saying so."""
    return isinstance(error, ConnectionError) or bool(_UNREACHABLE.search(str(error)))
