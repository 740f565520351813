"""The users columns' sizes are written where SQL cannot share them: PostgreSQL's DDL, the casts
of sql/stream/020_users.sql and sql/replicate/020_users.sql, and the too-long rule of
sql/stream/010_events.sql. This test is the one place that says they agree: an event the stream
accepts always fits PostgreSQL users, and replicate always fits MySQL users."""

from __future__ import annotations

import re

from runner import config
from runner.model.pipeline import load_sql_file

SCHEMA_SQL = config.ROOT / "docker" / "postgresql" / "init" / "02_schema.sql"


def ddl_sizes() -> dict[str, int]:
    """`column varchar(n)` of the users table in PostgreSQL's DDL."""
    table = re.search(r"create table if not exists users \((.*?)\n\);", SCHEMA_SQL.read_text(), re.S)
    assert table, f"{SCHEMA_SQL}: no `create table if not exists users (...)`"
    return {name: int(size) for name, size in re.findall(r"^\s*(\w+)\s+varchar\((\d+)\)", table.group(1), re.M)}


def test_the_stream_and_replicate_cast_the_users_columns_to_the_sizes_of_the_ddl():
    expected = ddl_sizes()
    assert expected == {"first_name": 100, "last_name": 100, "email": 255, "phone": 50, "loyalty_status": 10}
    for pipeline in ("stream", "replicate"):
        path = config.ROOT / "sql" / pipeline / "020_users.sql"
        assert load_sql_file(path).declared_sizes() == expected, path


def test_the_streams_too_long_rule_rejects_exactly_what_the_columns_cannot_hold():
    rules = re.findall(r"char_length\((\w+)\) > (\d+)", (config.ROOT / "sql" / "stream" / "010_events.sql").read_text())
    # loyalty_status needs no length rule: only Gold, Silver and Bronze pass.
    assert {name: int(size) for name, size in rules} == {k: v for k, v in ddl_sizes().items() if k != "loyalty_status"}
