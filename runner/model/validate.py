"""Check a pipeline without Spark or databases: settings, headers, syntax, order, references.

Example:
    >>> [str(p) for p in validate(load_pipeline("marts"))]
    []
"""

from __future__ import annotations

import re

from runner.model.flow import pipeline_flow
from runner.model.pipeline import Pipeline, Problem
from runner.model.spark_parser import strict_problems

_ORDERED_NAME = re.compile(r"^\d+_[A-Za-z0-9_]+\.sql$")


def validate(pipeline: Pipeline) -> list[Problem]:
    """Every problem of the pipeline, in file and line order; an empty list means valid."""
    problems = list(pipeline.all_problems()) + pipeline_flow(pipeline).problems()
    problems = strict_problems(pipeline, problems)  # issue 14: Spark's parser decides syntax; view columns
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
