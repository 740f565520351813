"""Shared pytest set-up: the test markers and connections to the platform's two databases.

Example:
    def test_app_user_sees_its_schema(pg):
        with pg.cursor() as cur:
            cur.execute("select current_schema()")
            assert cur.fetchone()[0] == "postgres_finals_schema"

Tests under tests/integration/ are marked `integration` automatically, so
`pytest -m "not integration"` runs everything that needs no server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import config as platform_config

INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def pytest_configure(config: pytest.Config) -> None:
    """Register the project's markers (pytest warns about unknown ones)."""
    config.addinivalue_line("markers", "integration: needs the real services that `make up` starts")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration/ as `integration`."""
    for item in items:
        if INTEGRATION_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def pg() -> Iterator:
    """A psycopg2 connection to PostgreSQL as the app user (search_path = the app schema)."""
    connection = platform_config.connection("postgresql").connect()
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def mysql() -> Iterator:
    """A pymysql connection to MySQL (MariaDB natively) as the app user, on the app database."""
    connection = platform_config.connection("mysql").connect()
    try:
        yield connection
    finally:
        connection.close()


# SQL unit cases (tests/sql/<pipeline>/<file-stem>.yml) are collected by the runner's harness.
from tests.sql_cases import pytest_collect_file  # noqa: E402,F401
