"""Describe what a run of a pipeline will do, without running it.

Example:
    >>> from runner.model.pipeline import load_pipeline
    >>> print(plan(load_pipeline("replicate")))   # doctest: +ELLIPSIS
    pipeline replicate: postgresql -> mysql, schedule @daily
    ...
"""

from __future__ import annotations

from collections.abc import Sequence

from runner.model.flow import pipeline_flow
from runner.model.pipeline import Pipeline


def plan(pipeline: Pipeline, select: Sequence[str] = ()) -> str:
    """The ordered files with what each reads and writes, and the source tables a run registers;
    with `select`, those of `run --select` (see `Flow.select`)."""
    settings = pipeline.settings
    flow = pipeline_flow(pipeline)
    if select:
        flow = flow.select(select)
    source = f"kafka topic {settings.topic}" if settings.source == "kafka" else settings.source
    lines = [f"pipeline {pipeline.name}: {source} -> {settings.target}, schedule {settings.schedule or 'none'}"]
    if settings.description:
        lines.append(f"  {settings.description}")
    width = max((len(f.name) for f in pipeline.files), default=10)
    for step in flow.steps:
        reads = ", ".join(read.name for read in step.reads) or "-"
        lines.append(f"  {step.file.name:<{width}}  reads {reads}")
        unpublished = (" (computed for the selected files, not published)"
                       if step.writes and not flow.publishes(step) else "")
        lines.append(f"  {'':<{width}}  -> {step.describe()}{unpublished}")
    if flow.staged():
        lines.append(f"staged results read before publishing: {', '.join(flow.staged())}")
    lines.append(f"sources registered from {source}: {', '.join(flow.registered()) or 'none'}")
    return "\n".join(lines)
