"""One Airflow DAG per SQL pipeline directory under sql/; a new directory is a new DAG.

The DAG id is the directory name and its only task submits the runner with that name. The
schedule comes from the directory's pipeline.toml: a cron expression or preset, or "assets" to run
whenever the pipelines that write the tables it reads have published them (each task declares
the tables it publishes as outlet Assets). DAGs start unpaused, one run at a time, no catch-up.

An invalid pipeline keeps its DAG and schedule: its documentation lists what `runner validate`
reports, and its runs fail at once with the runner's file:line message. A pipeline whose schedule
itself is unusable gets an unscheduled DAG saying why, so it never hides the other pipelines.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# The dag-processor puts only this folder on sys.path; the runner package sits at the project root.
_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE), str(_HERE.parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from airflow.sdk import DAG  # noqa: E402
from pipeline_lineage import doc_md, table_asset  # noqa: E402
from runner_submit import RunnerSubmitOperator  # noqa: E402

from runner.errors import one_line  # noqa: E402
from runner.model.flow import Flow, pipeline_flow  # noqa: E402
from runner.model.pipeline import load_pipeline, pipeline_names  # noqa: E402
from runner.model.validate import validate  # noqa: E402

log = logging.getLogger(__name__)

START_DATE = datetime(2025, 1, 1, tzinfo=UTC)
ASSETS = "assets"
UNSCHEDULED = {"", "none", "manual"}


def pipeline_dags() -> dict[str, DAG]:
    """Every pipeline's DAG, by directory name."""
    flows = {name: pipeline_flow(load_pipeline(name)) for name in pipeline_names()}
    producers = {table: name for name, flow in flows.items() for table in flow.writes()}
    dags = {}
    for name, flow in flows.items():
        try:
            dags[name] = pipeline_dag(flow, producers)
        except Exception as error:  # one unschedulable pipeline must not take the others down
            log.warning("pipeline %s cannot be scheduled: %s", name, one_line(error))
            dags[name] = unscheduled_dag(name, one_line(error))
    return dags


def pipeline_dag(flow: Flow, producers: dict[tuple[str, str], str]) -> DAG:
    """The DAG of one pipeline's flow; `producers` maps each published table to its pipeline."""
    pipeline = flow.pipeline
    settings = pipeline.settings
    schedule: Any = _schedule(settings.schedule)
    if schedule == ASSETS:
        upstream = [table for table in flow.inputs() if producers.get(table, pipeline.name) != pipeline.name]
        schedule = _assets(upstream)
        if not schedule:
            raise ValueError(
                f"sql/{pipeline.name}/pipeline.toml: schedule = \"assets\" but no other pipeline writes the "
                f"tables it reads ({', '.join(f'{c}.{t}' for c, t in flow.inputs()) or 'none'})")
    tags = ["sql", settings.source, settings.target] + (["invalid"] if validate(pipeline, strict=False) else [])
    dag = DAG(
        dag_id=pipeline.name,
        description=settings.description or None,
        doc_md=doc_md(flow),
        schedule=schedule,
        tags=tags,
        **_common(),
    )
    try:
        dag.timetable.validate()  # a bad cron expression fails here, not later in the scheduler
    except Exception as error:
        raise ValueError(f"sql/{pipeline.name}/pipeline.toml: schedule = {settings.schedule!r} is not a cron "
                         f"expression, a preset such as @daily, \"assets\" or \"none\": {error}") from None
    RunnerSubmitOperator(
        dag=dag,
        task_id="run",
        pipeline=pipeline.name,
        inlets=_assets(flow.inputs()),
        outlets=_assets(flow.writes()),
    )
    return dag


def unscheduled_dag(name: str, error: str) -> DAG:
    """An unscheduled DAG for a pipeline whose schedule is unusable, showing why in its documentation."""
    description = f"cannot be scheduled: {error}"
    dag = DAG(
        dag_id=name,
        description=description[:200],
        doc_md=f"# {name}\n\n**This pipeline cannot be scheduled**:\n\n```\n{error}\n```\n\n"
               f"Fix `sql/{name}/pipeline.toml`; until then the DAG runs only when triggered.",
        schedule=None,
        tags=["sql", "invalid"],
        **_common(),
    )
    RunnerSubmitOperator(dag=dag, task_id="run", pipeline=name)
    return dag


def _assets(tables: list[tuple[str, str]]) -> list[Any]:
    return [asset for asset in map(table_asset, tables) if asset is not None]


def _common() -> dict[str, Any]:
    return {
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "is_paused_upon_creation": False,
        "dagrun_timeout": timedelta(hours=2),
    }


def _schedule(value: str | None) -> str | None:
    value = (value or "").strip()
    return None if value.lower() in UNSCHEDULED else value


for _dag_id, _dag in pipeline_dags().items():
    globals()[_dag_id] = _dag
