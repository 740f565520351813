"""Describe what a run of a pipeline will do, without running it.

Example:
    >>> print(plan(load_pipeline("replicate")))   # doctest: +ELLIPSIS
    pipeline replicate: postgresql -> mysql, schedule @daily
    ...
"""

from __future__ import annotations

from runner.model.pipeline import Pipeline


def describe_write(pipeline: Pipeline, sql_file) -> str:
    """Where and how a file's result goes, e.g. `mysql.users (overwrite, keys user_id)`."""
    if sql_file.mode == "view":
        return f"view {sql_file.target}"
    if sql_file.mode == "check":
        return "check (fails the run if it returns rows)"
    keys = f", keys {', '.join(sql_file.keys)}" if sql_file.keys else ""
    return f"{pipeline.settings.target}.{sql_file.target} ({sql_file.mode}{keys})"


def plan(pipeline: Pipeline) -> str:
    """The ordered files with what each reads and writes, and the source tables a run registers."""
    settings = pipeline.settings
    source = f"kafka topic {settings.topic}" if settings.source == "kafka" else settings.source
    lines = [f"pipeline {pipeline.name}: {source} -> {settings.target}, schedule {settings.schedule or 'none'}"]
    if settings.description:
        lines.append(f"  {settings.description}")
    width = max((len(f.name) for f in pipeline.files), default=10)
    for sql_file in pipeline.files:
        reads = ", ".join(sql_file.reads) or "-"
        lines.append(f"  {sql_file.name:<{width}}  reads {reads}")
        lines.append(f"  {'':<{width}}  -> {describe_write(pipeline, sql_file)}")
    if pipeline.staged_reads():
        lines.append(f"staged results read before publishing: {', '.join(pipeline.staged_reads())}")
    lines.append(f"sources registered from {source}: {', '.join(pipeline.source_tables()) or 'none'}")
    return "\n".join(lines)
