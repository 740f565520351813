"""Spark's own SQL parser without a SparkSession: the syntax errors a run would raise, at file:line.

sqlglot reads the SQL for lineage but is lenient (it accepts `group by status,` and
`select a,, b`); Spark is not. Catalyst's parser runs in a bare JVM (py4j, no SparkContext,
no database), started once per process and shared by every pipeline validated in it. A
class-data archive of what the parser loads (written by the first run that finds none)
keeps its cold start near half a second.

Where no JVM is at hand (the DAG files at parse time), `fast_syntax_problems` is the sqlglot-only
path: token rules for the mistakes Spark rejects and sqlglot accepts; on those it gives Spark's
verdict at the same line.

Example:
    >>> spark_verdicts(["select status from orders group by status", "select status from orders group by status,"])
    [None, Verdict(line=1, message='at or near end of input')]
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from runner import config
from runner.model.pipeline import Pipeline, Problem, SqlFile

# Keywords Spark never takes as a table alias in its default (ANSI) mode: the grammar's
# strictNonReserved list. sqlglot accepts them (`from orders as on`).
STRICT_NON_RESERVED = {"anti", "cross", "except", "full", "inner", "intersect", "join", "lateral", "left",
                       "minus", "natural", "on", "right", "semi", "union", "using"}

_CLAUSE_AFTER = {TokenType.FROM, TokenType.WHERE, TokenType.GROUP_BY, TokenType.ORDER_BY, TokenType.HAVING,
                 TokenType.LIMIT, TokenType.R_PAREN, TokenType.COMMA, TokenType.UNION, TokenType.EXCEPT,
                 TokenType.INTERSECT, TokenType.QUALIFY, TokenType.WINDOW, TokenType.SEMICOLON,
                 TokenType.PARTITION_BY, TokenType.SORT_BY, TokenType.CLUSTER_BY, TokenType.DISTRIBUTE_BY,
                 TokenType.JOIN, TokenType.ON}
_LISTS = {TokenType.GROUP_BY: "group by", TokenType.ORDER_BY: "order by", TokenType.PARTITION_BY: "partition by",
          TokenType.SORT_BY: "sort by", TokenType.CLUSTER_BY: "cluster by", TokenType.DISTRIBUTE_BY: "distribute by"}
_SPARK_POSITION = re.compile(r"\s*SQLSTATE: \w+\s*\(line (\d+), pos (\d+)\)|\s*SQLSTATE: \w+")
_SAID_WHY = re.compile(r"exactly one SELECT statement|statement not allowed")  # pipeline.py's words
_ERROR_CLASS = re.compile(r"^\[[A-Z_.]+\]\s*")
_JAVA_OPTIONS = ["-XX:TieredStopAtLevel=1", "-Xss8m", "-Xlog:cds=off", "-Xlog:cds+dynamic=off",
                 "-Dlog4j2.level=ERROR", "-Duser.timezone=UTC"]


@dataclass(frozen=True)
class Verdict:
    """Spark's parser on one SQL text: None if it accepts it, else the 1-based line and message."""

    line: int
    message: str


def strict_problems(pipeline: Pipeline, problems: list[Problem], spark: bool = True) -> list[Problem]:
    """`problems` (sqlglot's) with the syntax verdicts replaced by Spark's parser's, plus the
    trailing-comma and view-column checks. Spark decides syntax: a file Spark accepts loses
    sqlglot's syntax error; a file it rejects gets Spark's message at Spark's line. With
    `spark=False` (the DAG files at parse time, a run whose own session parses the SQL anyway),
    or without a JVM, the sqlglot-only fast path decides instead."""
    from runner.model.columns import column_problems

    verdicts = spark_verdicts([f.sql for f in pipeline.files]) if spark and java_available() else None
    result = list(problems)
    for sql_file, verdict in zip(pipeline.files, verdicts or [None] * len(pipeline.files)):
        if verdicts is None:
            result += fast_syntax_problems(sql_file)
            continue
        syntax = [p for p in result if p.path == sql_file.path and p.message.startswith("syntax error")]
        result = [p for p in result if p not in syntax]
        if verdict is not None and any(_SAID_WHY.search(p.message) for p in sql_file.problems):
            continue  # sqlglot already said why (two statements, not a SELECT): Spark's "extra input" adds nothing
        if verdict is not None:
            # The token rules name the mistake at its own line (`group by` on line 6, where Spark
            # notices only at line 7); Spark's message covers everything else.
            result += fast_syntax_problems(sql_file) or [
                Problem(sql_file.path, verdict.line, f"syntax error: {verdict.message}")]
        elif sql_file.tree is not None:
            result += _comma_before_from(sql_file)
    return result + column_problems(pipeline)


def fast_syntax_problems(sql_file: SqlFile) -> list[Problem]:
    """Spark's verdict on the mistakes sqlglot lets through, from sqlglot alone (no JVM): a comma
    with nothing after it, an empty `group by` / `order by` / `partition by`, an empty `in ()`,
    and a keyword Spark refuses as a table alias. Only for a file sqlglot parsed."""
    if sql_file.tree is None:
        return []
    try:
        tokens = sqlglot.tokenize(sql_file.sql, read="spark")
    except sqlglot.errors.TokenError:
        return []
    found: list[Problem] = []
    for i, token in enumerate(tokens):
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.token_type == TokenType.COMMA and (after is None or after.token_type in _CLAUSE_AFTER):
            what = "a doubled comma" if after is not None and after.token_type == TokenType.COMMA else \
                f"a comma before {after.text.lower() if after else 'the end of the query'}"
            found.append(Problem(sql_file.path, token.line,
                                 f"syntax error: {what}: Spark rejects it; remove the comma"))
        elif token.token_type in _LISTS and (after is None or after.token_type in _CLAUSE_AFTER):
            found.append(Problem(sql_file.path, token.line,
                                 f"syntax error: an empty `{_LISTS[token.token_type]}`: name at least one column"))
        elif (token.token_type == TokenType.IN and after is not None and after.token_type == TokenType.L_PAREN
              and i + 2 < len(tokens) and tokens[i + 2].token_type == TokenType.R_PAREN):
            found.append(Problem(sql_file.path, token.line,
                                 "syntax error: an empty `in ()`: Spark needs at least one value"))
    for alias in sql_file.tree.find_all(exp.TableAlias):
        name = alias.args.get("this")
        if isinstance(name, exp.Identifier) and not name.quoted and name.name.lower() in STRICT_NON_RESERVED:
            found.append(Problem(sql_file.path, name.meta.get("line", 1),
                                 f"syntax error: {name.name!r} is a keyword Spark refuses as an alias: "
                                 f"pick another name or quote it as `{name.name}`"))
    return found


def _comma_before_from(sql_file: SqlFile) -> list[Problem]:
    """`select a, b, from t` parses in Spark as a column named `from` aliased `t` over no table,
    so the run fails; sqlglot reads a FROM clause. Both paths report it."""
    return [p for p in fast_syntax_problems(sql_file) if "a comma before from" in p.message]


def spark_verdicts(sqls: list[str]) -> list[Verdict | None]:
    """Catalyst's parser on each SQL text, in one JVM: None where it accepts the text."""
    parser = _parser()
    verdicts: list[Verdict | None] = []
    for sql in sqls:
        try:
            parser.parsePlan(sql)
            verdicts.append(None)
        except Exception as error:  # py4j wraps Spark's ParseException
            java = _java_exception(error)
            if java is None or not java.getClass().getName().endswith("ParseException"):
                raise
            verdicts.append(_verdict(sql, java))
    return verdicts


def _java_exception(error: BaseException | None):
    """The Java exception behind a py4j error. A SparkSession in the same process installs its
    error conversion for every py4j gateway, this one too, and converting our exception with
    its own JVM fails or misleads: the original py4j error is then earlier in the chain."""
    while error is not None:
        if (java := getattr(error, "java_exception", None)) is not None:
            return java
        error = error.__cause__ or error.__context__
    return None


def _verdict(sql: str, java) -> Verdict:
    text = str(java.getMessage()).strip().splitlines()[0]
    position = _SPARK_POSITION.search(text)
    line = int(position.group(1)) if position and position.group(1) else None
    message = _ERROR_CLASS.sub("", text[:position.start()] if position else text).rstrip(".")
    message = message.replace("Syntax error at or near", "at or near")
    if line is None:  # some errors (an empty IN list) carry the position in their query context only
        contexts = java.getQueryContext()
        start = contexts[0].startIndex() if len(contexts) else -1
        line = sql[:start].count("\n") + 1 if start >= 0 else 1
    if "end of input" in message:
        line = _last_token_line(sql) or line  # Spark points past the last line; the mistake is on it
    return Verdict(line, message)


def _last_token_line(sql: str) -> int | None:
    try:
        tokens = sqlglot.tokenize(sql, read="spark")
    except sqlglot.errors.TokenError:
        return None
    return tokens[-1].line if tokens else None


def java_available() -> bool:
    return bool(_java())


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def _spark_jars() -> Path:
    # Located without importing pyspark (its import alone costs a few hundred milliseconds).
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pyspark is not installed: Spark's parser needs its jars")
    return Path(list(spec.submodule_search_locations)[0]) / "jars"


def class_archive() -> Path:
    """The parser JVM's class-data archive, beside the driver's, named for the JVM and jars it
    fits (the JVM silently ignores an archive of other jars, so a stale one is never reused)."""
    from runner.engine.session import jars_dir

    java = os.path.realpath(_java() or "java")
    jars = _spark_jars()
    key = f"{java}|{os.stat(java).st_mtime_ns}|{jars}|{jars.stat().st_mtime_ns}"
    return jars_dir().parent / f"spark-parser-{hashlib.sha1(key.encode()).hexdigest()[:12]}.jsa"


_GATEWAY = None
_PARSER = None


def _parser():
    """Catalyst's parser object in the process's one parser JVM (started on first use)."""
    global _GATEWAY, _PARSER
    if _PARSER is not None:
        return _PARSER
    from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway

    archive = class_archive()
    partial = archive.with_name(f"{archive.stem}.{os.getpid()}.partial")
    if archive.is_file():
        sharing = [f"-XX:SharedArchiveFile={archive}", "-Xshare:auto"]
    elif archive.parent.is_dir() and os.access(archive.parent, os.W_OK):
        sharing = [f"-XX:ArchiveClassesAtExit={partial}"]  # this run pays ~1 s at exit, later runs gain it
    else:
        sharing = []
    config.jvm_on_loopback()
    port, token, proc = launch_gateway(classpath=f"{_spark_jars()}/*", javaopts=_JAVA_OPTIONS + sharing,
                                       java_path=_java(), die_on_exit=True, enable_auth=True, return_proc=True,
                                       redirect_stderr=subprocess.DEVNULL)
    _GATEWAY = JavaGateway(gateway_parameters=GatewayParameters(port=port, auth_token=token, auto_convert=True))
    atexit.register(_stop, proc, partial if sharing and "ArchiveClassesAtExit" in sharing[0] else None, archive)
    _PARSER = getattr(getattr(_GATEWAY.jvm.org.apache.spark.sql.catalyst.parser, "CatalystSqlParser$"), "MODULE$")
    return _PARSER


def _stop(proc, partial: Path | None, archive: Path) -> None:
    """End the parser JVM; when it is dumping a new archive, wait for it and put it in place."""
    _GATEWAY.close()
    proc.stdin.close()  # the JVM exits when its stdin closes (--die-on-broken-pipe)
    if partial is None:
        return
    try:
        proc.wait(timeout=60)
        if partial.is_file():
            partial.replace(archive)  # renamed whole: a concurrent run never maps half a file
    except (OSError, subprocess.TimeoutExpired):
        partial.unlink(missing_ok=True)


if __name__ == "__main__":  # python -m runner.model.spark_parser: write the class archive now
    spark_verdicts(["select 1 as x from t group by x"])
    print(f"writing {class_archive()}")
