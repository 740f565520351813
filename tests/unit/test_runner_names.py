"""Names the runner publishes and reads: validation rejects a target the database would cut or
that clashes with the runner's own tables and suffixes, a table two pipelines publish, and a read
that is not a plain identifier; every identifier is quoted for its dialect, quotes doubled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import types as T

from runner import config
from runner.model.pipeline import load_pipeline
from runner.model.validate import project_neighbours, validate
from runner.targets import ddl
from runner.targets.names import derived_names, quote, quote_qualified
from tests.fixtures.runner.pipelines import settings_toml, write_pipeline


def problems(directory: Path, others=None) -> list[str]:
    return [str(p) for p in validate(load_pipeline(directory), others)]


def one_file(tmp_path: Path, target: str, target_db: str = "mysql", name: str = "p") -> Path:
    sql = f"-- target: {target}\n-- keys: order_id\nselect order_id from orders\n"
    return write_pipeline(tmp_path / name, {"010_x.sql": sql}, settings_toml(target=target_db))


@pytest.mark.parametrize(("dialect", "longest_ok"), [("postgresql", 49), ("mysql", 55)])
def test_a_target_whose_staging_names_the_database_would_cut_is_rejected(tmp_path, dialect, longest_ok):
    assert problems(one_file(tmp_path, "t" * longest_ok, dialect, "ok")) == []
    found = problems(one_file(tmp_path, "t" * (longest_ok + 1), dialect, "long"))
    assert len(found) == 1 and found[0].split(":")[1] == "1", found  # the header line naming the target
    assert "too long" in found[0] and f"at most {longest_ok}" in found[0], found


def test_postgresql_limit_counts_the_staging_tables_primary_key_index():
    # X__staging_pkey is the longest name PostgreSQL gets for a target X: 14 bytes more.
    assert max(derived_names("t" * 49), key=len) == "t" * 49 + "__staging_pkey"
    assert len("t" * 49 + "__staging_pkey") == 63


@pytest.mark.parametrize("target", ["orders__staging", "orders__old", "orders__next", "runner_kafka_offsets",
                                    "runner_kafka_gaps", "Runner_Anything"])
def test_a_target_with_the_runners_suffixes_or_prefix_is_rejected(tmp_path, target):
    found = problems(one_file(tmp_path, target, "postgresql"))
    assert len(found) == 1 and found[0].split(":")[1] == "1", found
    assert "reserved" in found[0] or "the runner uses" in found[0], found


def test_a_check_or_view_may_use_any_name(tmp_path):
    sql = "-- target: runner_view\n-- mode: view\nselect order_id from orders\n"
    check = "-- mode: check\nselect order_id from runner_view where order_id < 0\n"
    directory = write_pipeline(tmp_path / "p", {"010_v.sql": sql, "020_check.sql": check})
    assert problems(directory) == []


def test_two_pipelines_publishing_one_table_are_both_reported(tmp_path):
    first = one_file(tmp_path, "shared_table", name="first")
    second = one_file(tmp_path, "shared_table", name="second")
    result = subprocess.run([sys.executable, "-m", "runner", "validate", str(first), str(second)],
                            cwd=config.ROOT, capture_output=True, text=True, timeout=120, env=os.environ)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, lines
    assert "also published by pipeline second" in lines[0] and "also published by pipeline first" in lines[1]
    assert all("mysql table 'shared_table'" in line for line in lines)


def test_the_same_table_name_on_two_connections_is_not_shared(tmp_path):
    mine = one_file(tmp_path, "users", "postgresql", "mine")
    theirs = one_file(tmp_path, "users", "mysql", "theirs")
    assert problems(mine, [load_pipeline(theirs)]) == []


def test_a_pipeline_publishing_a_table_of_a_pipeline_under_sql_is_reported(tmp_path):
    copy = one_file(tmp_path, "mart_user_activity", "mysql")
    found = problems(copy, [load_pipeline("marts")])
    assert len(found) == 1 and "also published by pipeline marts (sql/marts/010_mart_user_activity.sql)" in found[0]


def test_a_pipeline_under_sql_is_compared_with_the_others_there():
    assert sorted(p.name for p in project_neighbours(load_pipeline("marts"))) == ["replicate", "stream"]
    assert problems(config.ROOT / "sql" / "marts") == []


@pytest.mark.parametrize(("table", "words"), [
    ("`odd name`", "'odd name' is not a plain name"),
    ("mysql.`users; drop table x`", "is not a plain name"),
    ("other.mysql.users", "at most two parts"),
])
def test_a_read_that_is_not_a_plain_identifier_is_rejected(tmp_path, table, words):
    sql = f"select *\nfrom {table}\n"
    directory = write_pipeline(tmp_path / "p", {"010_orders.sql": sql},
                               settings_toml(tables=("orders", "odd name")))
    found = problems(directory)
    assert any(words in line and line.split(":")[1] == "2" for line in found), found


def test_quotes_inside_a_name_are_doubled_for_each_dialect():
    assert quote("mysql", "a`b") == "`a``b`"
    assert quote("postgresql", 'a"b') == '"a""b"'
    assert quote_qualified("postgresql", 'my"schema', "t") == '"my""schema"."t"'
    with pytest.raises(ValueError, match="NUL"):
        quote("mysql", "a\x00b")


def test_create_table_quotes_odd_column_names():
    schema = T.StructType([T.StructField("id`x", T.IntegerType()), T.StructField('say "hi"', T.StringType())])
    assert ddl.create_table("mysql", "t", schema, keys=("id`x",)).startswith(
        "CREATE TABLE `t` (`id``x` INT NOT NULL, `say \"hi\"` VARCHAR(255), PRIMARY KEY (`id``x`))")
    assert ddl.create_table("postgresql", "t", schema).startswith(
        'CREATE TABLE "t" ("id`x" INTEGER, "say ""hi""" VARCHAR(255))')
