"""Draw a pipeline's lineage as an SVG picture: the tables it reads, its files, what they publish.

The layout is the classic layered one (Sugiyama's): every node gets a column by its longest
path from the sources, an edge that skips columns passes through placeholder points so it never
crosses a box, and the order inside each column is improved by a few barycenter sweeps. It is
drawn as plain SVG text, with no Graphviz: a pipeline has a few dozen nodes at most, so this
takes about a millisecond, needs nothing installed (natively or in the Airflow image), and can
be drawn on every request by the Airflow plugin that serves it (plugins/lineage_pictures.py).

Example:
    >>> svg = diagram(pipeline_flow(load_pipeline("marts")))
    >>> svg.startswith("<svg") and "010_mart_user_activity.sql" in svg and "mysql.orders" in svg
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from pathlib import Path

from runner.model.flow import Flow, Read, Step, pipeline_flow
from runner.model.pipeline import load_pipeline

SERVED_AT = "/pipeline-lineage"  # where Airflow's api-server serves the pictures (plugins/lineage_pictures.py)
CHAR_WIDTH = 7.4  # px per character of the 12px monospace font, a little generous
NODE_HEIGHT = 40
ROW_GAP = 14
COLUMN_GAP = 64
MARGIN = 16
TITLE_HEIGHT = 30
SWEEPS = 4

# fill, stroke per kind of node; tables by the connection they live in
COLORS = {
    "postgresql": ("#e8f0fb", "#336791"),
    "mysql": ("#e6f4f7", "#00758f"),
    "kafka": ("#eeeeee", "#231f20"),
    "unknown": ("#fdecea", "#c62828"),
    "file": ("#ffffff", "#37474f"),
    "view": ("#eef7ee", "#2e7d32"),
    "check": ("#fff4e5", "#d9822b"),
}


@dataclass
class Node:
    """A box of the picture: a table (of a connection) or a file (writer, view or check)."""

    id: str
    label: str
    detail: str
    kind: str  # a key of COLORS
    layer: int = 0

    @property
    def width(self) -> float:
        return max(len(self.label), len(self.detail)) * CHAR_WIDTH + 24


def lineage(flow: Flow) -> tuple[dict[str, Node], list[tuple[str, str]]]:
    """The picture's graph: nodes by id and edges (from, to), in file order.

    A table a file publishes is its own node, apart from the same table read before it is
    written (as a source or a published table), so the picture stays acyclic.
    """
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []

    def table(connection: str, name: str, version: int | None, detail: str) -> str:
        node_id = f"table:{connection}.{name}@{version}"
        kind = connection if connection in COLORS else "unknown"
        nodes.setdefault(node_id, Node(node_id, f"{connection}.{name}" if connection else name, detail, kind))
        return node_id

    def source(read: Read) -> str:
        if read.kind == "view":
            return f"file:{read.producer}"
        if read.kind in ("result", "staged"):
            return table(read.connection, read.table, read.producer, "written by this pipeline")
        if read.kind == "problem":
            return table("", read.name, None, "unknown table")
        return table(read.connection, read.table, None, "Kafka topic" if read.connection == "kafka" else read.kind)

    for step in flow.steps:
        file_id = f"file:{step.index}"
        mode = step.file.mode
        nodes[file_id] = Node(file_id, step.file.name, _detail(step), mode if mode in ("view", "check") else "file")
        edges += [(source(read), file_id) for read in step.reads]
        if step.writes:
            edges.append((file_id, table(*step.writes, step.index, "published")))
    return nodes, list(dict.fromkeys(edges))


def diagram(flow: Flow) -> str:
    """The flow's lineage as a standalone SVG document (see the module docstring)."""
    nodes, edges = lineage(flow)
    columns, points = _layout(nodes, edges)
    widths = [max((nodes[n].width for n in column if n in nodes), default=0) for column in columns]
    lefts = [MARGIN + sum(widths[:i]) + COLUMN_GAP * i for i in range(len(columns))]
    heights = [sum(_height(n, nodes) for n in column) + ROW_GAP * (len(column) - 1) for column in columns]
    tallest = max(heights, default=0)
    centre: dict[str, tuple[float, float]] = {}  # node or placeholder -> its centre
    for i, column in enumerate(columns):
        y = MARGIN + TITLE_HEIGHT + (tallest - heights[i]) / 2
        for node_id in column:
            centre[node_id] = (lefts[i] + widths[i] / 2, y + _height(node_id, nodes) / 2)
            y += _height(node_id, nodes) + ROW_GAP
    width = (lefts[-1] + widths[-1] if columns else 0) + MARGIN
    height = MARGIN * 2 + TITLE_HEIGHT + tallest
    settings = flow.pipeline.settings
    title = f"{flow.pipeline.name}: {settings.source} \u2192 {settings.target}"

    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
         f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="ui-monospace, Menlo, Consolas, monospace" '
         f'font-size="12" role="img" aria-label="lineage of pipeline {escape(flow.pipeline.name)}">'),
        f"<title>Lineage of pipeline {escape(flow.pipeline.name)}</title>",
        ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
         'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#78909c"/></marker></defs>'),
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',  # legible on a dark page too
        f'<text x="{MARGIN}" y="{MARGIN + 14}" font-size="14" font-weight="bold" fill="#263238">{escape(title)}</text>',
    ]
    for start, end in edges:
        route = [start, *points.get((start, end), []), end]
        parts.append(_edge([centre[n] for n in route], [_half_width(n, nodes, widths, columns) for n in route]))
    for node_id, node in nodes.items():
        parts.append(_box(node, *centre[node_id]))
    parts.append("</svg>")
    return "\n".join(parts)


def write_docs(names: Iterable[str], out: Path) -> list[Path]:
    """Write `<pipeline>.svg` and `<pipeline>.html` per pipeline, and `index.html`, into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    written, links = [], []
    for name in names:
        flow = pipeline_flow(load_pipeline(name))
        svg = diagram(flow)
        name = flow.pipeline.name
        (out / f"{name}.svg").write_text(svg)
        (out / f"{name}.html").write_text(page(flow, svg))
        written += [out / f"{name}.svg", out / f"{name}.html"]
        links.append(f'<li><a href="{escape(name)}.html">{escape(name)}</a> '
                     f"{escape(flow.pipeline.settings.description)}</li>")
    (out / "index.html").write_text(_html("Pipelines", f"<h1>Pipelines</h1><ul>{''.join(links)}</ul>"))
    return [*written, out / "index.html"]


def step_rows(flow: Flow) -> list[tuple[str, list[str], str]]:
    """Per file in run order: its name, what it reads (labels), and where its result goes."""
    return [(step.file.name, list(dict.fromkeys(read.label for read in step.reads)), step.describe())
            for step in flow.steps]


def page(flow: Flow, svg: str | None = None) -> str:
    """One pipeline's HTML page: the picture, then its files with what each reads and writes."""
    rows = "".join(f"<tr><td>{i}</td><td><code>{escape(name)}</code></td>"
                   f"<td>{', '.join(f'<code>{escape(label)}</code>' for label in reads) or '&mdash;'}</td>"
                   f"<td>{escape(writes)}</td></tr>"
                   for i, (name, reads, writes) in enumerate(step_rows(flow), start=1))
    pipeline = flow.pipeline
    body = (f"<h1>{escape(pipeline.name)}</h1><p>{escape(pipeline.settings.description)}</p>"
            f"{svg or diagram(flow)}<table><tr><th>#</th><th>File</th><th>Reads</th><th>Writes</th></tr>"
            f"{rows}</table>")
    return _html(f"Lineage of {pipeline.name}", body)


def _html(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            "<style>body{font-family:system-ui,sans-serif;margin:2em;color:#263238}"
            "table{border-collapse:collapse;margin-top:1.5em}td,th{border:1px solid #cfd8dc;padding:4px 8px;"
            f"text-align:left}}svg{{max-width:100%;height:auto}}</style></head><body>{body}</body></html>\n")


def _detail(step: Step) -> str:
    sql_file = step.file
    if sql_file.mode == "view":
        return f"view {sql_file.target}"
    if sql_file.mode == "check":
        return "check"
    return f"{sql_file.mode}" + (f" on {', '.join(sql_file.keys)}" if sql_file.mode == "merge" else "")


def _layout(nodes: dict[str, Node], edges: list[tuple[str, str]]):
    """Columns of node ids (and placeholder ids) in drawing order, and each long edge's placeholders."""
    incoming: dict[str, list[str]] = {n: [] for n in nodes}
    outgoing: dict[str, list[str]] = {n: [] for n in nodes}
    for start, end in edges:
        incoming[end].append(start)
        outgoing[start].append(end)
    for _ in nodes:  # longest path from the sources; a few dozen nodes, so plain relaxation
        for node_id, node in nodes.items():
            node.layer = max((nodes[p].layer + 1 for p in incoming[node_id]), default=0)
    for node_id, node in reversed(nodes.items()):
        if not incoming[node_id] and outgoing[node_id]:  # a source sits just before its first reader
            node.layer = min(nodes[s].layer for s in outgoing[node_id]) - 1
    columns: list[list[str]] = [[] for _ in range(max((n.layer for n in nodes.values()), default=-1) + 1)]
    for node_id, node in nodes.items():
        columns[node.layer].append(node_id)
    points: dict[tuple[str, str], list[str]] = {}
    neighbours: dict[str, tuple[list[str], list[str]]] = {n: (incoming[n], outgoing[n]) for n in nodes}
    for start, end in edges:
        chain = [f"{start}->{end}#{layer}" for layer in range(nodes[start].layer + 1, nodes[end].layer)]
        if not chain:
            continue
        points[(start, end)] = chain
        route = [start, *chain, end]
        for before, here, after in zip(route, route[1:], route[2:]):
            columns[nodes[start].layer + route.index(here)].append(here)
            neighbours[here] = ([before], [after])
        neighbours[start][1][neighbours[start][1].index(end)] = chain[0]
        neighbours[end][0][neighbours[end][0].index(start)] = chain[-1]
    for sweep in range(SWEEPS):  # order each column by the mean position of its neighbours
        down = sweep % 2 == 0
        for i in range(1, len(columns)) if down else range(len(columns) - 2, -1, -1):
            position = {n: p for p, n in enumerate(columns[i - 1 if down else i + 1])}
            current = {n: p for p, n in enumerate(columns[i])}
            columns[i].sort(key=lambda n: _mean([position[m] for m in neighbours[n][0 if down else 1]
                                                 if m in position], current[n]))
    return columns, points


def _mean(values: list[int], default: float) -> float:
    return sum(values) / len(values) if values else default


def _height(node_id: str, nodes: dict[str, Node]) -> float:
    return NODE_HEIGHT if node_id in nodes else 8


def _half_width(node_id: str, nodes: dict[str, Node], widths: list[float], columns: list[list[str]]) -> float:
    if node_id in nodes:
        return nodes[node_id].width / 2
    column = next(i for i, c in enumerate(columns) if node_id in c)
    return widths[column] / 2  # a placeholder is a straight line across its column


def _edge(centres: list[tuple[float, float]], halves: list[float]) -> str:
    """A smooth path from the right side of the first box through each placeholder to the left
    side of the last box."""
    x, y = centres[0][0] + halves[0], centres[0][1]
    path = [f"M{x:.1f},{y:.1f}"]
    for (cx, cy), half, last in zip(centres[1:], halves[1:], [False] * (len(centres) - 2) + [True]):
        left = cx - half
        bend = (left - x) / 2
        path.append(f"C{x + bend:.1f},{y:.1f} {left - bend:.1f},{cy:.1f} {left:.1f},{cy:.1f}")
        x, y = (left, cy) if last else (cx + half, cy)
        if not last:
            path.append(f"L{x:.1f},{y:.1f}")
    return (f'<path d="{" ".join(path)}" fill="none" stroke="#78909c" stroke-width="1.4" '
            'marker-end="url(#arrow)"/>')


def _box(node: Node, cx: float, cy: float) -> str:
    fill, stroke = COLORS[node.kind]
    x, y = cx - node.width / 2, cy - NODE_HEIGHT / 2
    shapes = {"view": 'rx="16" stroke-dasharray="5 3"', "check": 'rx="2" stroke-dasharray="2 2"'}
    shape = shapes.get(node.kind, 'rx="6"')
    weight = ' font-weight="bold"' if node.kind in ("file", "view", "check") else ""
    return (f'<g class="node {node.kind}" data-node="{escape(node.label)}"><title>{escape(node.label)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{node.width:.1f}" height="{NODE_HEIGHT}" {shape} '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
            f'<text x="{cx:.1f}" y="{cy - 3:.1f}" text-anchor="middle" fill="#263238"{weight}>'
            f'{escape(node.label)}</text>'
            f'<text x="{cx:.1f}" y="{cy + 12:.1f}" text-anchor="middle" fill="#607d8b" font-size="10">'
            f"{escape(node.detail)}</text></g>")
