"""Readers of the compose deployment's files, for the static checks: no Docker engine, no network.

Example:
    >>> interpolate_with({"AIRFLOW_PORT": "8080"})("${AIRFLOW_PORT}:8080")
    '8080:8080'
    >>> variables("pg_isready -p $$PGPORT -h ${HOST:-localhost}")
    ['HOST']

They read docker-compose.yml, .env, the Dockerfiles, and the README's Docker section.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runner import config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_FILE = ROOT / ".env"
DOCS = (ROOT / "README.md",)

# The variables of compose's interpolation (runner/config.py does the interpolating): `$$` is a
# literal `$`; `${VAR}`, `${VAR:-default}`, `${VAR:?error}`, `${VAR:+other}` (and without `:`), `$VAR`.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_MERMAID = re.compile(r"```mermaid\n(.*?)```", re.S)
_NODE = re.compile(r"^\s*([A-Za-z0-9_]+)\[([^\]]+)\]\s*$")
_EDGE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*-->\|\s*([a-z_]+)\s*\|\s*([A-Za-z0-9_]+)\s*$")
_TABLE_ROW = re.compile(r"^\|(.+)\|\s*$")


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a parsed YAML tree, with a readable path (`services.kafka.ports[0]`)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def variables(text: str) -> list[str]:
    """The names of the variables compose interpolates in `text` (not `$$`-escaped ones)."""
    return [m.group("braced") or m.group("bare") for m in _VARIABLE.finditer(text) if not m.group("escaped")]


def interpolate_with(values: dict[str, str]) -> Callable[[Any], Any]:
    """A function that interpolates a string (or a whole tree) the way compose does, from `values`.

    The rules are runner.config's (compose's); a variable without a default that `values` lacks
    is an error here, where compose would warn and substitute an empty string.
    """

    def undefined(name: str) -> str:
        raise KeyError(f"${{{name}}} is not defined in .env")

    def interpolate(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: interpolate(value) for key, value in node.items()}
        if isinstance(node, list):
            return [interpolate(value) for value in node]
        if isinstance(node, str):
            return config.interpolate(node, values.get, COMPOSE_FILE.name, unset=undefined)
        return node

    return interpolate


def read_dotenv(path: Path) -> dict[str, str]:
    """The values of a .env file as compose reads them, without the process environment."""
    return config.read_dotenv(path, environ={})


def doc_containing(marker: Callable[[str], bool]) -> tuple[Path, str]:
    """README.md, which must have the Docker section's `marker`."""
    for path in DOCS:
        if path.exists() and marker(text := path.read_text()):
            return path, text
    pytest.fail(f"neither {' nor '.join(str(p.relative_to(ROOT)) for p in DOCS)} has the Docker section")


@dataclass(frozen=True)
class Diagram:
    """The service dependency graph drawn in the docs: node labels and labelled edges."""

    path: Path
    nodes: dict[str, str]  # id -> service name
    edges: set[tuple[str, str, str]]  # (dependency, dependent, condition), by service name


def mermaid_blocks(text: str) -> list[str]:
    """The contents of the ```mermaid blocks in a markdown text."""
    return _MERMAID.findall(text)


def is_dependency_diagram(block: str) -> bool:
    return "-->|service_" in block


def parse_diagram(path: Path, block: str) -> Diagram:
    """Nodes `ID[service]` and edges `A -->|condition| B` of a mermaid graph."""
    nodes, raw_edges = {}, []
    for number, line in enumerate(block.splitlines(), start=1):
        if node := _NODE.match(line):
            nodes[node.group(1)] = node.group(2).strip()
        elif edge := _EDGE.match(line):
            raw_edges.append((number, edge.groups()))
    edges = set()
    for number, (source, condition, target) in raw_edges:
        missing = [n for n in (source, target) if n not in nodes]
        assert not missing, f"{path.name}: diagram line {number} uses undeclared node(s) {missing}"
        edges.add((nodes[source], nodes[target], condition))
    return Diagram(path, nodes, edges)


def parse_ports_table(text: str) -> dict[str, list[int]]:
    """The table with `Service` and `Host port` columns: service name -> host ports."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not _TABLE_ROW.match(line):
            continue
        header = [cell.strip().lower() for cell in line.strip().strip("|").split("|")]
        if "service" in header and "host port" in header:
            service_col, port_col = header.index("service"), header.index("host port")
            table: dict[str, list[int]] = {}
            for row in lines[index + 2:]:
                if not _TABLE_ROW.match(row):
                    break
                cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
                service = cells[service_col].strip("`")
                table.setdefault(service, []).extend(int(p) for p in re.findall(r"\d+", cells[port_col]))
            return table
    return {}


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: where it starts, its keyword, and its arguments as one line."""

    line: int
    keyword: str
    arguments: str


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined and comments dropped."""
    instructions, pending, start = [], "", 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append(Instruction(start, keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def base_images(path: Path) -> list[str]:
    """The images a Dockerfile builds FROM (stage names of earlier stages excluded)."""
    images, stages = [], set()
    for instruction in dockerfile_instructions(path):
        if instruction.keyword == "FROM":
            words = [w for w in instruction.arguments.split() if not w.startswith("--")]
            if words[0] not in stages:
                images.append(words[0])
            if len(words) == 3 and words[1].upper() == "AS":
                stages.add(words[2])
    return images


def copy_sources(path: Path) -> list[tuple[int, str]]:
    """(line, source) of every COPY/ADD from the build context (not --from another stage)."""
    sources = []
    for instruction in dockerfile_instructions(path):
        if instruction.keyword not in ("COPY", "ADD"):
            continue
        words = instruction.arguments.split()
        if any(w.startswith("--from=") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        sources.extend((instruction.line, source) for source in paths[:-1])
    return sources
