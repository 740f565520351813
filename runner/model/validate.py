"""Check a pipeline without Spark or databases: settings, headers, syntax, order, references.

Example:
    >>> [str(p) for p in validate(load_pipeline("marts"))]
    []
"""

from __future__ import annotations

import re

from runner import config
from runner.model.pipeline import Pipeline, Problem

_ORDERED_NAME = re.compile(r"^\d+_[A-Za-z0-9_]+\.sql$")


def validate(pipeline: Pipeline) -> list[Problem]:
    """Every problem of the pipeline, in file and line order; an empty list means valid."""
    problems = list(pipeline.all_problems())
    sources = set(pipeline.settings.tables)
    producers: dict[str, int] = {}
    for index, sql_file in enumerate(pipeline.files):
        if not _ORDERED_NAME.match(sql_file.name):
            problems.append(Problem(sql_file.path, 1, "file name needs a numeric prefix and a plain name, "
                                                      "e.g. 020_orders.sql: files run in file-name order"))
        if sql_file.target in producers and sql_file.mode != "check":
            first = pipeline.files[producers[sql_file.target]].name
            problems.append(Problem(sql_file.path, sql_file.header_lines.get("target", 1),
                                    f"{sql_file.target!r} is already produced by {first}: one file per target"))
        producers.setdefault(sql_file.target, index)

    for index, sql_file in enumerate(pipeline.files):
        for table in sql_file.reads:
            problem = _reference_problem(pipeline, index, table, sources, producers)
            if problem:
                problems.append(Problem(sql_file.path, sql_file.line_of(table), problem))
    return sorted(set(problems), key=lambda p: (str(p.path), p.line, p.message))


def _reference_problem(pipeline: Pipeline, index: int, table: str, sources: set[str],
                       producers: dict[str, int]) -> str | None:
    if "." in table:
        connection, _, name = table.partition(".")
        if connection not in config.CONNECTIONS or connection == "kafka":
            return (f"{table}: {connection!r} is not a database connection "
                    f"(qualify with postgresql. or mysql., or leave unqualified)")
        return None
    produced_at = producers.get(table)
    if produced_at is not None and produced_at < index:
        return None
    if table in sources:
        return None
    if produced_at is not None and produced_at > index:
        return (f"reads {table!r}, which {pipeline.files[produced_at].name} produces later: "
                "files run in file-name order, so renumber them")
    if not sources and any(p.path == pipeline.settings_path for p in pipeline.problems):
        return None  # the settings themselves are broken and reported; their tables are unknown
    if not sources:
        return (f"unknown table {table!r}: no earlier file produces it and {pipeline.settings_path.name} "
                f"declares no source tables (add tables = [\"{table}\", ...])")
    where = (f"the topic of {pipeline.settings_path.name}" if pipeline.settings.source == "kafka"
             else f"tables in {pipeline.settings_path.name}")
    return (f"unknown table {table!r}: neither a view of an earlier file nor a source table "
            f"({where}: {', '.join(sorted(sources))})")
