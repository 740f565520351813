"""`-- verify: checksum` on the real PostgreSQL and MySQL: the row count and checksum each database
computes of its side agree for a faithful copy, and a single changed value, a missing row and an
extra row are each caught. The rows are chosen to trip a careless rendering: decimals with
trailing zeros and below zero, microseconds, NULL next to an empty string, non-ASCII text, and
the bulk loader's separators (tab, newline, backslash) inside values.

Everything happens in a scratch PostgreSQL schema and MySQL database, dropped at the end.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import types as T

from runner import config
from runner.engine.sources import Snapshot
from runner.engine.verify import CopyDiffers, verify_copy
from runner.model.flow import pipeline_flow
from runner.model.pipeline import load_pipeline
from runner.targets.base import target_for
from runner.targets.fingerprint import fingerprint, utc_connection
from tests.fixtures.scratch import Scratch

pytestmark = pytest.mark.integration

ROWS = [
    (1, "Ann", "10.50", "2024-01-15 09:30:00.123456", "gold"),
    (2, "Chloé Müller", "-0.10", "2024-02-01 00:00:00", None),
    (3, "", "0.00", "2023-12-31 23:59:59.000001", ""),
    (4, "tab\there, new\nline, back\\slash", "99999999.99", None, "N"),
    (5, "雪 ❄", None, "1999-01-01 00:00:00.5", "0:"),
]
# The copy's result types: what the verification renders both sides by.
SCHEMA = T.StructType([
    T.StructField("item_id", T.IntegerType()),
    T.StructField("name", T.StringType()),
    T.StructField("price", T.DecimalType(10, 2)),
    T.StructField("made_at", T.TimestampType()),
    T.StructField("note", T.StringType()),
])
CREATE_ITEMS = ("create table items (item_id integer primary key, name varchar(100), price numeric(10, 2), "
                "made_at timestamp, note varchar(20))")
COPY_SQL = """-- keys: item_id
-- verify: checksum

select
    cast(item_id as int) as item_id,
    cast(name as varchar(100)) as name,
    cast(price as decimal(10, 2)) as price,
    cast(made_at as timestamp) as made_at,
    cast(note as varchar(20)) as note
from items
"""


def execute(connection: config.Connection, *statements: tuple[str, tuple | None]) -> None:
    db = connection.connect()
    try:
        with db.cursor() as cursor:
            for statement, args in statements:
                cursor.execute(statement, args)
        db.commit()
    finally:
        db.close()


def pipeline_dir(directory: Path, sql: str) -> Path:
    directory.mkdir()
    (directory / "pipeline.toml").write_text('source = "postgresql"\ntables = ["items"]\ntarget = "mysql"\n')
    (directory / "010_items.sql").write_text(sql)
    return directory


def run(directory: Path, scratch: Scratch) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", "run", str(directory)], cwd=config.ROOT,
                          env=scratch.env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Iterator[Scratch]:
    """Source rows in PostgreSQL, copied by a verified run of the one-file pipeline into MySQL."""
    scratch = Scratch(f"verify_test_{uuid.uuid4().hex[:10]}")
    subprocess.run(["bash", "local/initdb.sh", "postgresql", "mysql"], cwd=config.ROOT, check=True,
                   capture_output=True, env=scratch.env)
    try:
        execute(scratch.pg_connection,
                (CREATE_ITEMS, None),
                *[("insert into items values (%s, %s, %s, %s, %s)", row) for row in ROWS])
        result = run(pipeline_dir(tmp_path_factory.mktemp("verified") / "copy", COPY_SQL), scratch)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "verified mysql.items: 5 rows equal to postgresql.items" in result.stderr
        yield scratch
    finally:
        pg = scratch.pg_connection.connect()
        with pg.cursor() as cursor:
            cursor.execute(f'drop schema if exists "{scratch.name}" cascade')
        pg.commit()
        pg.close()
        execute(scratch.mysql_connection, (f"drop database if exists `{scratch.name}`", None))


def both_fingerprints(scratch: Scratch, mysql_table: str = "items") -> tuple[tuple[int, int], tuple[int, int]]:
    columns = [("item_id", "int", 0), ("name", "string", 0), ("price", "decimal", 2),
               ("made_at", "timestamp", 0), ("note", "string", 0)]
    sides = []
    for connection, dialect, table in ((scratch.pg_connection, "postgresql", "items"),
                                       (scratch.mysql_connection, "mysql", mysql_table)):
        db = utc_connection(connection)
        try:
            sides.append(fingerprint(db, dialect, table, columns))
        finally:
            db.close()
    return sides[0], sides[1]


def staged_copy_after(scratch: Scratch, tmp_path: Path, monkeypatch, *changes: str):
    """verify_copy on `items__staging`: the published copy with `changes` applied to it."""
    execute(scratch.mysql_connection, ("drop table if exists items__staging", None),
            ("create table items__staging like items", None),
            ("insert into items__staging select * from items", None),
            *[(change, None) for change in changes])
    monkeypatch.setenv("POSTGRESQL_APP_SCHEMA", scratch.name)
    monkeypatch.setenv("MYSQL_APP_DB", scratch.name)
    flow = pipeline_flow(load_pipeline(pipeline_dir(tmp_path / "copy", COPY_SQL)))
    verify_copy(flow.steps[0], SCHEMA, target_for(config.connection("mysql"), "copy"), None)


def test_a_faithful_copy_has_the_same_fingerprint_in_both_databases(scratch):
    source, copy = both_fingerprints(scratch)
    assert source == copy
    assert source[0] == len(ROWS)


def test_bulk_loaded_values_arrive_exactly(scratch):
    db = utc_connection(scratch.mysql_connection)
    with db.cursor() as cursor:
        cursor.execute("select item_id, name, cast(price as char), date_format(made_at, '%Y-%m-%d %H:%i:%s.%f'), "
                       "note from items order by item_id")
        got = cursor.fetchall()
    db.close()
    expected = [(i, name, price, at and (at + ".000000" if "." not in at else at.ljust(26, "0")), note)
                for i, name, price, at, note in ROWS]
    assert [tuple(row) for row in got] == expected


def test_a_single_changed_value_is_caught(scratch, tmp_path, monkeypatch):
    with pytest.raises(CopyDiffers, match=r"mysql\.items: checksum differs over 5 rows"):
        staged_copy_after(scratch, tmp_path, monkeypatch,
                          "update items__staging set price = price + 0.01 where item_id = 2")


def test_a_null_that_became_an_empty_string_is_caught(scratch, tmp_path, monkeypatch):
    with pytest.raises(CopyDiffers, match="checksum differs"):
        staged_copy_after(scratch, tmp_path, monkeypatch, "update items__staging set note = '' where item_id = 2")


def test_lost_microseconds_are_caught(scratch, tmp_path, monkeypatch):
    with pytest.raises(CopyDiffers, match="checksum differs"):
        staged_copy_after(scratch, tmp_path, monkeypatch, "update items__staging set made_at = '2023-12-31 23:59:59' "
                                             "where item_id = 3")


def test_a_missing_row_is_caught(scratch, tmp_path, monkeypatch):
    with pytest.raises(CopyDiffers, match="row count differs: 4 staged, 5 in postgresql.items"):
        staged_copy_after(scratch, tmp_path, monkeypatch, "delete from items__staging where item_id = 4")


def test_an_extra_row_is_caught(scratch, tmp_path, monkeypatch):
    with pytest.raises(CopyDiffers, match="row count differs: 6 staged, 5 in postgresql.items"):
        staged_copy_after(scratch, tmp_path, monkeypatch,
                          "insert into items__staging values (6, 'Extra', 1.00, null, null)")


def test_an_extra_row_below_every_source_key_is_caught(scratch, tmp_path, monkeypatch):
    # The checksum is summed over key ranges of each side: a key outside the source's range
    # still falls in one of them.
    with pytest.raises(CopyDiffers, match="row count differs: 6 staged, 5 in postgresql.items"):
        staged_copy_after(scratch, tmp_path, monkeypatch,
                          "insert into items__staging values (-7, 'Extra', 1.00, null, null)")


def test_an_unchanged_staged_copy_passes(scratch, tmp_path, monkeypatch):
    staged_copy_after(scratch, tmp_path, monkeypatch)


def test_rows_committed_after_the_snapshot_are_not_seen_by_it(scratch):
    with Snapshot(scratch.pg_connection) as snapshot:
        execute(scratch.pg_connection, ("insert into items values (100, 'Late', 1.00, null, null)", None))
        try:
            db = snapshot.connect()
            with db.cursor() as cursor:
                cursor.execute("select count(*) from items")
                assert cursor.fetchone()[0] == len(ROWS)
            db.close()
        finally:
            execute(scratch.pg_connection, ("delete from items where item_id = 100", None))


def test_a_copy_that_changes_a_value_fails_the_run_and_publishes_nothing(scratch, tmp_path, monkeypatch):
    changed = pipeline_dir(tmp_path / "changed", COPY_SQL.replace("cast(name as varchar(100))",
                                                                  "cast(upper(name) as varchar(100))"))
    before = both_fingerprints(scratch)[1]
    result = run(changed, scratch)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "010_items.sql: verify checksum failed for mysql.items: checksum differs over 5 rows" in result.stderr
    assert both_fingerprints(scratch)[1] == before
