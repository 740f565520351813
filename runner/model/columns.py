"""Columns read from an earlier file's result that it does not have, at file:line.

A later file reads an earlier file's result by its target name (a `view` file, or any written
result). When the earlier SELECT names every output column (no `*`), its columns are known
without Spark; a column the later file takes from it that is not among them is an error. Only
what is knowable is checked: a `*`, an unqualified column with several sources in scope, or a
source whose columns are unknown is left to Spark.

Example:
    >>> from runner.model.pipeline import load_pipeline
    >>> [str(p) for p in column_problems(load_pipeline("marts"))]
    []
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from runner.model.pipeline import Pipeline, Problem, SqlFile


def output_columns(sql_file: SqlFile) -> list[str] | None:
    """The names of the file's result columns (lowercase, as Spark matches them), or None when
    they are not knowable from the SQL alone."""
    tree = sql_file.tree
    while isinstance(tree, exp.SetOperation):  # a union's columns are named by its first SELECT
        tree = tree.this
    if not isinstance(tree, exp.Select):
        return None
    names = []
    for projection in tree.expressions:
        if isinstance(projection, exp.Star) or isinstance(projection, exp.Column) and projection.is_star:
            return None
        name = projection.alias_or_name
        if not name:
            return None
        names.append(name.lower())
    return names


def column_problems(pipeline: Pipeline) -> list[Problem]:
    """Each column a file reads from an earlier file's result that the result lacks."""
    known: dict[str, list[str] | None] = {}
    problems: list[Problem] = []
    for sql_file in pipeline.files:
        if sql_file.tree is not None:
            problems += _file_problems(sql_file, known)
        if sql_file.mode != "check":
            known[sql_file.target] = output_columns(sql_file) if sql_file.tree is not None else None
    return problems


def _file_problems(sql_file: SqlFile, known: dict[str, list[str] | None]) -> list[Problem]:
    problems = []
    try:
        scopes = traverse_scope(sql_file.tree)
    except Exception:  # sqlglot cannot scope every query Spark runs: then nothing is checked
        return []
    for scope in scopes:
        tables = {alias: source.name for alias, source in scope.sources.items()
                  if isinstance(source, exp.Table) and not source.db}
        if len(tables) != len(scope.sources) or scope.expression.find(exp.Lateral, exp.Unnest):
            continue  # a subquery, CTE or generator in scope: its columns are not tracked here
        own_aliases = {s.alias.lower() for s in scope.expression.selects if s.alias} \
            if isinstance(scope.expression, exp.Select) else set()
        for column in scope.columns:
            name = column.name.lower()
            if column.table:
                source = tables.get(column.table)
            elif len(tables) == 1 and name not in own_aliases:
                source = next(iter(tables.values()))
            else:
                continue
            columns = known.get(source)
            if columns is not None and name not in columns:
                problems.append(Problem(sql_file.path, column.this.meta.get("line", 1),
                                        f"column {column.name!r} is not in {source!r} (an earlier file's result: "
                                        f"{', '.join(columns)})"))
    return problems
