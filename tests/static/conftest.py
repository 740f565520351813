"""Fixtures of the static checks: the compose deployment as data (see deployment.py).

Example:
    def test_kafka_is_published_on_9092(services, interpolate):
        assert interpolate(services["kafka"]["ports"][0]) == "9092:9094"
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from deployment import (
    COMPOSE_FILE,
    ENV_FILE,
    Diagram,
    doc_containing,
    interpolate_with,
    is_dependency_diagram,
    mermaid_blocks,
    parse_diagram,
    parse_ports_table,
    read_dotenv,
)


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """docker-compose.yml as parsed YAML (anchors and `<<` merges resolved), not interpolated."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="session")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="session")
def dotenv() -> dict[str, str]:
    """The shipped .env (the values compose interpolates when nothing overrides them)."""
    return read_dotenv(ENV_FILE)


@pytest.fixture(scope="session")
def interpolate(dotenv: dict[str, str]) -> Callable[[Any], Any]:
    return interpolate_with(dotenv)


@pytest.fixture(scope="session")
def one_shot(services: dict[str, dict[str, Any]]) -> set[str]:
    """Set-up jobs that run to completion: the services that declare `restart: "no"`."""
    return {name for name, service in services.items() if service.get("restart") == "no"}


@pytest.fixture(scope="session")
def diagram() -> Diagram:
    path, text = doc_containing(lambda t: any(is_dependency_diagram(b) for b in mermaid_blocks(t)))
    block = next(b for b in mermaid_blocks(text) if is_dependency_diagram(b))
    return parse_diagram(path, block)


@pytest.fixture(scope="session")
def ports_table() -> tuple[Path, dict[str, list[int]]]:
    path, text = doc_containing(lambda t: bool(parse_ports_table(t)))
    return path, parse_ports_table(text)
