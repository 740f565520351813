"""Airflow plugin: serves each pipeline's lineage picture from the api-server, for the DAG docs.

Airflow 3.3's UI renders a DAG's doc_md with raw HTML skipped and only http(s) or relative image
addresses kept (no data: URIs, no mermaid), so the documentation shows a markdown image of
`/pipeline-lineage/<pipeline>.svg` (diagram.SERVED_AT), which this FastAPI app answers on the api-server itself:

    GET /pipeline-lineage/marts.svg    the picture (runner.model.diagram), drawn from sql/marts
    GET /pipeline-lineage/marts        the same picture with the file list, as an HTML page

It is drawn from the SQL on request (a few milliseconds, no JVM, no database) and cached until a
file of the pipeline changes, so it always matches what the DAG runs. It shows table and file
names only, never settings or credentials.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

_ROOT = Path(__file__).resolve().parent.parent  # the runner package sits at the project root
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

from runner.model.diagram import SERVED_AT, diagram, page
from runner.model.flow import pipeline_flow
from runner.model.pipeline import SQL_ROOT, load_pipeline, pipeline_names

app = FastAPI(title="Pipeline lineage", docs_url=None, redoc_url=None, openapi_url=None)


def _version(name: str) -> tuple:
    """Changes whenever a file of the pipeline does: the cache key."""
    return tuple((p.name, p.stat().st_mtime_ns) for p in sorted((SQL_ROOT / name).iterdir()) if p.is_file())


@lru_cache(maxsize=32)
def _drawn(name: str, version: tuple) -> tuple[str, str]:
    flow = pipeline_flow(load_pipeline(name))
    svg = diagram(flow)
    return svg, page(flow, svg)


def _pipeline(name: str) -> tuple[str, str]:
    if name not in pipeline_names():  # only directories under sql/: a name is never a path
        raise HTTPException(status_code=404, detail=f"no pipeline {name!r} (known: {', '.join(pipeline_names())})")
    return _drawn(name, _version(name))


@app.get("/{name}.svg")
def lineage_svg(name: str) -> Response:
    return Response(_pipeline(name)[0], media_type="image/svg+xml", headers={"Cache-Control": "no-cache"})


@app.get("/{name}")
def lineage_page(name: str) -> HTMLResponse:
    return HTMLResponse(_pipeline(name)[1], headers={"Cache-Control": "no-cache"})


class PipelineLineagePlugin(AirflowPlugin):
    name = "lineage_pictures"
    fastapi_apps: ClassVar[list[dict]] = [{"app": app, "url_prefix": SERVED_AT, "name": "Pipeline lineage"}]
