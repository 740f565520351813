"""The runner's failures, each with the exit code that tells a scheduler whether to retry."""

from __future__ import annotations

import re


class RunnerError(Exception):
    """The run failed (bad SQL at run time, a failed check, a failed publish): exit 1, no retry."""

    exit_code = 1


class InvalidPipeline(RunnerError):
    """The pipeline did not validate, or the command was wrong: exit 2, no retry."""

    exit_code = 2


class Retryable(RunnerError):
    """A transient failure: exit 3, worth a retry."""

    exit_code = 3


class Unreachable(Retryable):
    """A database or broker could not be reached."""


class Busy(Retryable):
    """Another run of the same pipeline holds its lock."""


_UNREACHABLE = re.compile(
    r"Connection refused|Communications link failure|UnknownHostException|could not connect|"
    r"Connection to \S+ refused|NoBrokersAvailable|TimeoutException|timed out", re.IGNORECASE)
_SPARK_LINE = re.compile(r"line (\d+),? pos(?:ition)? (\d+)|SQLSTATE: \w+\) line (\d+)")
_PASSWORD = re.compile(r"(password[\"']?\s*[:=]\s*)[^\s,;&)]+", re.IGNORECASE)


def one_line(error: BaseException) -> str:
    """The first meaningful line of an error (Spark's and Py4J's are long), with secrets masked."""
    text = str(error)
    java = re.search(r"(?:Exception|Error): (.+)", text) if "py4j" in type(error).__module__ else None
    lines = [line.strip() for line in (java.group(1) if java else text).splitlines() if line.strip()]
    return redact(lines[0] if lines else type(error).__name__)


def redact(text: str) -> str:
    return _PASSWORD.sub(r"\1***", text)


def spark_error_line(error: BaseException) -> int | None:
    """The SQL line a Spark parse or analysis error points at, if it gives one."""
    match = _SPARK_LINE.search(str(error))
    if not match:
        return None
    return int(match.group(1) or match.group(3))


def is_unreachable(error: BaseException) -> bool:
    return isinstance(error, (ConnectionError, Unreachable)) or bool(_UNREACHABLE.search(str(error)))
