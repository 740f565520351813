"""`python -m runner show <file.sql>`: compute one file from its pipeline's sources and print its
first rows as a table, publishing nothing (like `dbt show`).

The file runs with what it needs (`Flow.select(..., checks=False)`: its upstream views and the
results of earlier writers it reads) through the same `execute` as a run, but nothing is staged:
each result stays a DataFrame, and a qualified read of a staged copy (`mysql.users` after
020_users.sql) reads that DataFrame instead. No run lock is taken, so a run may go on meanwhile.
A check shows its offending rows instead of failing.

Illustration (needs the platform's services):

    print(show(Path("sql/marts/010_mart_user_activity.sql"), limit=5))
"""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from runner import config
from runner.engine.execute import execute
from runner.engine.run import Reader, check_valid
from runner.engine.session import spark_session
from runner.errors import InvalidPipeline
from runner.model.flow import Read, pipeline_flow
from runner.model.pipeline import SqlFile, load_pipeline
from runner.targets.base import target_for

log = logging.getLogger("runner")

NULL = "NULL"


def show(path: Path | str, limit: int = 20, spark=None) -> str:
    """The first `limit` rows of the file at `path` as a text table, with a line saying what it is."""
    path = Path(path)
    if path.suffix != ".sql" or not path.is_file():
        raise InvalidPipeline(f"{path}: not an SQL file (show takes a path such as sql/marts/010_x.sql)")
    if limit < 0:
        raise InvalidPipeline(f"--limit {limit}: give a number of rows, 0 or more")
    pipeline = load_pipeline(path.resolve().parent)
    check_valid(pipeline)
    flow = pipeline_flow(pipeline).select([path.stem], checks=False)
    shown = flow.steps[-1]  # the others are what it reads, all earlier
    # The shown file runs as a writer whose "write" keeps its first rows: a view or a check is
    # then computed by the same code path as a result, and a check does not fail on its rows.
    flow = replace(flow, steps=(*flow.steps[:-1], replace(shown, file=replace(shown.file, mode="overwrite"))))
    results: dict[str, object] = {}
    kept: dict[str, list] = {}

    def write(sql_file: SqlFile, frame) -> int:
        if sql_file.path == shown.file.path:
            kept["columns"] = frame.columns
            kept["rows"] = frame.limit(limit).collect()
            return len(kept["rows"])
        results[sql_file.target] = frame  # read by later files as the staged copy would be
        return frame.count()

    spark = spark or spark_session(f"{pipeline.name}-show")
    target = target_for(config.connection(pipeline.settings.target), pipeline.name)
    reader = Reader(spark, flow, target)

    def sources(read: Read):
        return results[read.table] if read.kind == "staged" else reader(read)

    runner_log = logging.getLogger("runner")
    level = runner_log.level
    runner_log.setLevel(logging.WARNING)  # the per-file lines speak of staging, which show does not do
    try:
        execute(spark, flow, sources, write)
    finally:
        runner_log.setLevel(level)
    return format_table(kept["columns"], kept["rows"]) + "\n" + _caption(shown.file, len(kept["rows"]), limit)


def _caption(sql_file: SqlFile, count: int, limit: int) -> str:
    what = "offending row(s) of check" if sql_file.mode == "check" else "row(s) of"
    more = f" (the first {limit}; --limit N shows more)" if count == limit and limit else ""
    return f"{count} {what} {sql_file.name}{more}; nothing was published"


def format_table(columns: list[str], rows: list) -> str:
    """Rows as a Markdown-style text table, numbers right-aligned, NULL for a missing value.

    Example:
        >>> print(format_table(["id", "name"], [(1, "Ann"), (10, None)]))
        | id | name |
        |---:|------|
        |  1 | Ann  |
        | 10 | NULL |
    """
    cells = [[NULL if value is None else str(value) for value in row] for row in rows]
    numeric = [bool(rows) and all(isinstance(row[i], (int, float, Decimal)) or row[i] is None for row in rows)
               and any(row[i] is not None for row in rows) for i in range(len(columns))]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(value.rjust(width) if right else value.ljust(width)
                                 for value, width, right in zip(values, widths, numeric)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if right else "-" * (w + 2) for w, right in zip(widths, numeric)) + "|"
    return "\n".join([line(list(columns)), rule, *(line(row) for row in cells)])
