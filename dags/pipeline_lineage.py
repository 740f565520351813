"""A pipeline's flow rendered for Airflow: its Assets and the DAG's documentation.

Everything comes from the runner's pipeline model (`runner.model.flow`): what Airflow shows and
schedules on is what a run reads and writes, with no list kept by hand. The lineage picture in
the documentation is served by plugins/lineage_pictures.py, drawn by runner.model.diagram.

Example:
    >>> from runner.model.pipeline import load_pipeline
    >>> marts = pipeline_flow(load_pipeline("marts"))
    >>> sorted(table for _, table in marts.inputs())
    ['order_details', 'orders', 'products', 'users']
    >>> print(doc_md(marts).splitlines()[0])
    # marts
"""

from __future__ import annotations

from airflow.sdk import Asset

from runner.model.diagram import SERVED_AT, step_rows
from runner.model.flow import Flow, Table, pipeline_flow  # noqa: F401 - pipeline_flow for callers


def table_asset(table: Table) -> Asset | None:
    """The Asset of a database table, named `connection.table`; None for a Kafka topic.

    URIs follow the providers' schemes: mysql://host:port/database/table and
    postgres://host:port/database/schema/table (no credentials in either).
    """
    from runner import config

    name, table_name = table
    connection = config.connection(name)
    if connection.kind == "mysql":
        uri = f"mysql://{connection.host}:{connection.port}/{connection.database}/{table_name}"
    elif connection.kind == "postgresql":
        uri = (f"postgres://{connection.host}:{connection.port}/{connection.database}/"
               f"{connection.schema}/{table_name}")
    else:
        return None
    return Asset(uri=uri, name=f"{name}.{table_name}", group="table")


def doc_md(flow: Flow) -> str:
    """The DAG's documentation: settings, the lineage picture, and the files in run order with
    what each reads and writes.

    Airflow 3.3's UI skips raw HTML and drops data: image addresses in doc_md, and shows mermaid
    as source text, so the picture is a markdown image served by the api-server itself
    (plugins/lineage_pictures.py draws it from the same flow). Nothing is drawn at parse time.
    """
    pipeline, settings = flow.pipeline, flow.pipeline.settings
    source = f"Kafka topic `{settings.topic}`" if settings.source == "kafka" else f"`{settings.source}`"
    picture = f"{SERVED_AT}/{pipeline.name}"
    lines = [
        f"# {pipeline.name}",
        "",
        settings.description or "",
        "",
        f"**Schedule:** `{settings.schedule}` · **Reads from:** {source} · **Publishes to:** `{settings.target}`",
        "",
        (f"Each run submits `python -m runner run {pipeline.name}` with spark-submit on the master of the "
         "`spark_default` connection; the SQL below is the whole transform."),
        "",
        *_problems(flow),
        "## Lineage",
        "",
        # Airflow shows a doc_md image at most 300 px wide: the picture links to its full size.
        f"[![Lineage of {pipeline.name}: its source tables, SQL files and published tables]({picture}.svg)]({picture})",
        "",
        f"Click the picture for its [full size]({picture}); `python -m runner docs` writes it to files.",
        "",
        "## Files, in run order",
        "",
        "| # | File | Reads | Writes |",
        "|---|------|-------|--------|",
    ]
    for number, (name, reads, writes) in enumerate(step_rows(flow), start=1):
        lines.append(f"| {number} | `{name}` | {', '.join(f'`{label}`' for label in reads) or '—'} | {writes} |")
    return "\n".join([*lines, ""])


def _problems(flow: Flow) -> list[str]:
    """A warning block listing what `runner validate` reports from the SQL alone, if anything."""
    from runner.model.validate import validate

    problems = [str(problem) for problem in validate(flow.pipeline, strict=False)]
    if not problems:
        return []
    return [("> **This pipeline is invalid**: its runs fail until these are fixed "
             f"(`python -m runner validate {flow.pipeline.name}`):"), ">",
            *[f"> - `{problem}`" for problem in problems], ""]
