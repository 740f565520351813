"""A pipeline's flow rendered for Airflow: its Assets and the DAG's documentation.

Everything comes from the runner's pipeline model (`runner.model.flow`): what Airflow shows and
schedules on is what a run reads and writes, with no list kept by hand.

Example:
    >>> from runner.model.pipeline import load_pipeline
    >>> marts = pipeline_flow(load_pipeline("marts"))
    >>> sorted(table for _, table in marts.inputs())
    ['order_details', 'orders', 'products', 'users']
    >>> print(doc_md(marts).splitlines()[0])
    # marts
"""

from __future__ import annotations

import re
from typing import Iterable

from airflow.sdk import Asset

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
    """The DAG's documentation: settings, the files in run order with what each reads and writes,
    and a mermaid lineage diagram."""
    pipeline, settings = flow.pipeline, flow.pipeline.settings
    source = f"Kafka topic `{settings.topic}`" if settings.source == "kafka" else f"`{settings.source}`"
    lines = [
        f"# {pipeline.name}",
        "",
        settings.description or "",
        "",
        f"**Schedule:** `{settings.schedule}` · **Reads from:** {source} · **Publishes to:** `{settings.target}`",
        "",
        f"Each run submits `python -m runner run {pipeline.name}` with spark-submit on the master of the "
        "`spark_default` connection; the SQL below is the whole transform.",
        "",
        *_problems(flow),
        "| # | File | Reads | Writes |",
        "|---|------|-------|--------|",
    ]
    for number, step in enumerate(flow.steps, start=1):
        reads = ", ".join(f"`{label}`" for label in _unique(read.label for read in step.reads)) or "—"
        lines.append(f"| {number} | `{step.file.name}` | {reads} | {step.describe()} |")
    lines += ["", "## Lineage", "", "```mermaid", mermaid(flow), "```", ""]
    return "\n".join(lines)


def mermaid(flow: Flow) -> str:
    """A left-to-right mermaid flowchart: tables (cylinders) and views -> files -> what they publish.

    Example:
        flowchart LR
          f_010_users["010_users.sql"]
          postgresql_users[("postgresql.users")]
          mysql_users[("mysql.users")]
          postgresql_users --> f_010_users
          f_010_users --> mysql_users
    """
    nodes: dict[str, str] = {}
    edges: list[str] = []

    def node(table: Table) -> str:
        node_id = _node_id(*table)
        shape = '(["%s"])' if table[0] == "view" else '[("%s")]'
        nodes.setdefault(node_id, node_id + shape % _label(table))
        return node_id

    for step in flow.steps:
        file_node = _node_id("f", step.file.path.stem)
        nodes[file_node] = file_node + ('{{"%s"}}' if step.file.mode == "check" else '["%s"]') % step.file.name
        edges += [f"{node(table)} --> {file_node}" for table in _unique(read.node for read in step.reads)]
        if step.output:
            edges.append(f"{file_node} --> {node(step.output)}")
    return "\n".join(["flowchart LR", *(f"  {line}" for line in [*nodes.values(), *edges])])


def _problems(flow: Flow) -> list[str]:
    """A warning block listing what `runner validate` reports from the SQL alone, if anything."""
    problems = [str(problem) for problem in flow.pipeline.all_problems() + flow.problems()]
    if not problems:
        return []
    return ["> **This pipeline is invalid**: its runs fail until these are fixed "
            f"(`python -m runner validate {flow.pipeline.name}`):", ">",
            *[f"> - `{problem}`" for problem in problems], ""]


def _label(table: Table) -> str:
    connection, name = table
    return name if connection == "view" else f"{connection}.{name}"


def _node_id(*parts: str) -> str:
    return re.sub(r"\W", "_", "_".join(parts))


def _unique(items: Iterable[Table]) -> list[Table]:
    return list(dict.fromkeys(items))
