"""Check a pipeline without Spark or databases: settings, headers, syntax, order, references.

Example:
    >>> [str(p) for p in validate(load_pipeline("marts"))]
    []
"""

from __future__ import annotations

import re
from pathlib import Path

from runner.model.flow import pipeline_flow
from runner.model.pipeline import SQL_ROOT, Pipeline, Problem, SqlFile, load_pipeline, pipeline_names, table_nodes
from runner.model.pipeline import _relative as relative_path
from runner.model.spark_parser import strict_problems
from runner.targets.names import target_name_problem

_ORDERED_NAME = re.compile(r"^\d+_[A-Za-z0-9_]+\.sql$")
# A table read from a database reaches JDBC as one quoted identifier: a plain name only.
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def validate(pipeline: Pipeline, others: list[Pipeline] | None = None, strict: bool = True) -> list[Problem]:
    """Every problem of the pipeline, in file and line order; an empty list means valid.

    `others`: the pipelines it must not publish the same table as; by default, for a
    pipeline under sql/, the other pipelines there. `strict`: Spark's own parser judges the
    syntax (a JVM, about a second); else the sqlglot-only fast path, which agrees on the
    mistakes sqlglot lets through (see spark_parser.fast_syntax_problems).
    """
    problems = list(pipeline.all_problems()) + pipeline_flow(pipeline).problems()
    problems += _name_problems(pipeline)
    problems += shared_target_problems(pipeline, project_neighbours(pipeline) if others is None else others)
    problems = strict_problems(pipeline, problems, spark=strict)  # Spark's parser decides syntax; view columns
    producers: dict[str, str] = {}
    for sql_file in pipeline.files:
        if not _ORDERED_NAME.match(sql_file.name):
            problems.append(Problem(sql_file.path, 1, "file name needs a numeric prefix and a plain name, "
                                                      "e.g. 020_orders.sql: files run in file-name order"))
        if sql_file.mode == "check":
            continue
        if sql_file.target in producers:
            problems.append(Problem(sql_file.path, sql_file.header_lines.get("target", 1),
                                    f"{sql_file.target!r} is already produced by {producers[sql_file.target]}: "
                                    "one file per target"))
        producers.setdefault(sql_file.target, sql_file.name)
    return sorted(set(problems), key=lambda p: (str(p.path), p.line, p.message))


def _name_problems(pipeline: Pipeline) -> list[Problem]:
    """Targets the runner's own names would clash with or the database would cut, and table
    names that are not plain identifiers."""
    problems = []
    dialect = pipeline.settings.target
    for sql_file in pipeline.files:
        if sql_file.writes and (why := target_name_problem(dialect, sql_file.target)):
            problems.append(Problem(sql_file.path, sql_file.header_lines.get("target", 1), why))
        for node in table_nodes(sql_file.tree):
            if node.args.get("catalog") is not None:
                problems.append(Problem(sql_file.path, node.this.meta.get("line", 1), (
                    f"{node.sql(dialect='spark')}: a table name has at most two parts "
                    "(`orders`, or `mysql.orders` for another connection)")))
        for name in sql_file.reads:
            if not all(_PLAIN_NAME.match(part) for part in name.split(".")):
                problems.append(Problem(sql_file.path, sql_file.line_of(name), (
                    f"table {name!r} is not a plain name (letters, digits and _, optionally after a "
                    "connection: mysql.users): the runner reads only such names from a database")))
    return problems


def project_neighbours(pipeline: Pipeline) -> list[Pipeline]:
    """The other pipelines under sql/, when `pipeline` is one of them (a scratch copy elsewhere
    is compared with nothing)."""
    if pipeline.directory.resolve().parent != SQL_ROOT.resolve():
        return []
    return [load_pipeline(name) for name in pipeline_names() if name != pipeline.directory.name]


def published(pipeline: Pipeline) -> dict[tuple[str, str], SqlFile]:
    """(connection, table) -> the file that publishes it; nothing for unreadable settings."""
    if any(p.path == pipeline.settings_path for p in pipeline.problems):
        return {}
    return {(pipeline.settings.target, f.target): f for f in pipeline.files if f.writes}


def shared_target_problems(pipeline: Pipeline, others: list[Pipeline]) -> list[Problem]:
    """A table this pipeline publishes that another one publishes too: the two runs would
    overwrite or mix each other's rows."""
    mine = published(pipeline)
    problems = []
    for other in others:
        if Path(other.directory).resolve() == Path(pipeline.directory).resolve():
            continue
        for (connection, table), theirs in published(other).items():
            if (connection, table) in mine:
                sql_file = mine[(connection, table)]
                problems.append(Problem(sql_file.path, sql_file.header_lines.get("target", 1), (
                    f"{connection} table {table!r} is also published by pipeline {other.name} "
                    f"({relative_path(theirs.path)}): "
                    "two pipelines must not publish the same table; rename one target")))
    return problems
