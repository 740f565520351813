"""What a pipeline reads and writes, as Airflow Assets and as the DAG's documentation.

Everything comes from the runner's parsed pipeline (sqlglot found the tables each file reads),
so the Assets and the lineage diagram follow the SQL with no list kept by hand.

Example:
    >>> from runner.model.pipeline import load_pipeline
    >>> marts = load_pipeline("marts")
    >>> sorted(table for _, table in reads(marts))
    ['order_details', 'orders', 'products', 'users']
    >>> print(doc_md(marts).splitlines()[0])
    # marts
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from airflow.sdk import Asset

Table = tuple[str, str]  # (connection name, table name)

WRITE_MODES = ("overwrite", "append", "merge")


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


def writes(pipeline: Any) -> list[Table]:
    """The tables a run publishes, in file order: (target connection, target table)."""
    target = pipeline.settings.target
    return _unique((target, file.target) for file in pipeline.files if file.mode in WRITE_MODES)


def reads(pipeline: Any) -> list[Table]:
    """The tables a run reads that something else produces: its source tables (not a Kafka
    topic) and qualified reads (`mysql.users`) of tables this run does not publish itself."""
    source = pipeline.settings.source
    written = set(writes(pipeline))
    tables: list[Table] = []
    for name in pipeline.source_tables():
        if "." in name:
            connection, _, table = name.partition(".")
            if (connection, table) not in written:
                tables.append((connection, table))
        elif source != "kafka":
            tables.append((source, name))
    return _unique(tables)


def doc_md(pipeline: Any) -> str:
    """The DAG's documentation: settings, the files in run order with what each reads and writes,
    and a mermaid lineage diagram."""
    settings = pipeline.settings
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
        *_problems(pipeline),
        "| # | File | Reads | Writes | Mode |",
        "|---|------|-------|--------|------|",
    ]
    for number, (file, inputs) in enumerate(zip(pipeline.files, _file_inputs(pipeline)), start=1):
        mode = file.mode + (f" on {', '.join(file.keys)}" if file.keys else "")
        output = ("—" if file.mode == "check" else f"view `{file.target}`" if file.mode == "view"
                  else f"`{settings.target}.{file.target}`")
        lines.append(f"| {number} | `{file.path.name}` | {', '.join(f'`{_label(t)}`' for t in inputs) or '—'} "
                     f"| {output} | {mode} |")
    lines += ["", "## Lineage", "", "```mermaid", mermaid(pipeline), "```", ""]
    return "\n".join(lines)


def mermaid(pipeline: Any) -> str:
    """A left-to-right mermaid flowchart: tables (cylinders) and views -> files -> what they publish.

    Example:
        flowchart LR
          f_010_users["010_users.sql"]
          postgresql_users[("postgresql.users")]
          mysql_users[("mysql.users")]
          postgresql_users --> f_010_users
          f_010_users --> mysql_users
    """
    target = pipeline.settings.target
    nodes: dict[str, str] = {}
    edges: list[str] = []

    def node(table: Table) -> str:
        node_id = _node_id(*table)
        shape = '(["%s"])' if table[0] == "view" else '[("%s")]'
        nodes.setdefault(node_id, node_id + shape % _label(table))
        return node_id

    for file, inputs in zip(pipeline.files, _file_inputs(pipeline)):
        step = _node_id("f", file.path.stem)
        nodes[step] = step + ('{{"%s"}}' if file.mode == "check" else '["%s"]') % file.path.name
        edges += [f"{node(table)} --> {step}" for table in inputs]
        if file.mode == "view":
            edges.append(f"{step} --> {node(('view', file.target))}")
        elif file.mode in WRITE_MODES:
            edges.append(f"{step} --> {node((target, file.target))}")
    return "\n".join(["flowchart LR", *(f"  {line}" for line in [*nodes.values(), *edges])])


def _problems(pipeline: Any) -> list[str]:
    """A warning block listing what `runner validate` reports, if anything."""
    problems = [str(problem) for problem in pipeline.all_problems()]
    if not problems:
        return []
    return ["> **This pipeline is invalid**: its runs fail until these are fixed "
            f"(`python -m runner validate {pipeline.name}`):", ">",
            *[f"> - `{problem}`" for problem in problems], ""]


def _file_inputs(pipeline: Any) -> list[list[Table]]:
    """For each file, the tables it reads: a view or table an earlier file produced, else a
    source table (or the Kafka topic), or a qualified `connection.table`."""
    settings = pipeline.settings
    produced: dict[str, Table] = {}
    result = []
    for file in pipeline.files:
        inputs = []
        for name in file.reads:
            if "." in name:
                connection, _, table = name.partition(".")
                inputs.append((connection, table))
            elif name in produced:
                inputs.append(produced[name])
            elif settings.source == "kafka":
                inputs.append(("kafka", settings.topic or name))
            else:
                inputs.append((settings.source, name))
        result.append(_unique(inputs))
        if file.mode == "view":
            produced[file.target] = ("view", file.target)
        elif file.mode in WRITE_MODES:
            produced[file.target] = (settings.target, file.target)
    return result


def _label(table: Table) -> str:
    connection, name = table
    return name if connection == "view" else f"{connection}.{name}"


def _node_id(*parts: str) -> str:
    return re.sub(r"\W", "_", "_".join(parts))


def _unique(items: Iterable[Table]) -> list[Table]:
    return list(dict.fromkeys(items))
