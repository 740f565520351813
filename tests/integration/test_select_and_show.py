"""`run --select` and `show` against the real PostgreSQL and MariaDB, as subprocesses.

One scratch pipeline (PostgreSQL source `t_<random>_src`, MySQL targets `t_<random>_*`):

    010_base            view over the source
    020_<p>_names       overwrite, reads base
    030_<p>_amounts     overwrite, reads base and the result of 020 (an earlier writer)
    040_<p>_others      overwrite, reads base (independent of 030)
    100_check_amounts   check, reads the staged mysql.<p>_amounts

The targets start as a previous run left them; every test compares a checksum of each target
table it must not change before and after.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from test_runner import (
    FIRST_ROWS,
    RUN_TIMEOUT,
    create_source,
    drop_tables,
    mysql_table,
    new_prefix,
    pipeline_dir,
    rows,
    run_runner,
    sql,
    tables_like,
)

from runner import config
from runner.targets.base import target_for
from tests.fixtures.runner.pipelines import settings_toml, write_pipeline

pytestmark = pytest.mark.integration

OLD = [(99, "published before")]


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh table-name prefix; every table starting with it is dropped afterwards."""
    name = new_prefix()
    yield name
    drop_tables(name)


def scratch_pipeline(tmp_path: Path, prefix: str) -> Path:
    src = f"{prefix}_src"
    create_source(prefix, FIRST_ROWS)
    for name in ("names", "amounts", "others"):
        mysql_table(f"{prefix}_{name}", "id int primary key, label varchar(60)", OLD)
    return write_pipeline(pipeline_dir(tmp_path, prefix), {
        "010_base.sql": f"-- mode: view\nselect id, name, amount from {src}\n",
        f"020_{prefix}_names.sql": "-- keys: id\nselect id, cast(name as varchar(60)) as label from base\n",
        f"030_{prefix}_amounts.sql": (
            "-- keys: id\n"
            f"select n.id, cast(b.amount as decimal(10,2)) as amount\nfrom {prefix}_names as n\n"
            "join base as b on b.id = n.id\n"),
        f"040_{prefix}_others.sql": "-- keys: id\nselect id, cast(name as varchar(60)) as label from base\n",
        "100_check_amounts.sql": f"-- mode: check\nselect * from mysql.{prefix}_amounts where amount < 0\n",
    }, settings_toml(tables=(src,), target="mysql"))


def checksums(prefix: str, names: list[str]) -> dict[str, tuple]:
    """MySQL's CHECKSUM TABLE of each table, with its rows: equal means byte-identical content."""
    return {name: (sql("mysql", f"checksum table `{prefix}_{name}` extended")[0][1], rows("mysql", f"{prefix}_{name}"))
            for name in names}


def show(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", "show", str(path), *args], cwd=config.ROOT,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
                          env={**os.environ, "SPARK_MASTER_URL": "local[*]"})


def test_select_publishes_only_the_selected_target_after_its_check(tmp_path: Path, prefix: str) -> None:
    pipeline = scratch_pipeline(tmp_path, prefix)
    before = checksums(prefix, ["names", "others"])

    run = run_runner(pipeline, "--select", f"030_{prefix}_amounts")

    assert run.returncode == 0, run.explain()
    assert rows("mysql", f"{prefix}_amounts") == [(1, Decimal("10.50")), (2, Decimal("0.99")),
                                                  (3, Decimal("12345678.90"))]
    assert checksums(prefix, ["names", "others"]) == before  # 020 ran (030 reads it) but is not published
    assert "100_check_amounts.sql" in run.stderr and "check passed" in run.stderr, run.explain()
    assert f"040_{prefix}_others.sql" not in run.stderr, run.explain()
    assert tables_like("mysql", prefix) == sorted(f"{prefix}_{n}" for n in ("amounts", "names", "others"))


def test_select_of_an_unknown_file_exits_2_naming_it_and_changes_nothing(tmp_path: Path, prefix: str) -> None:
    pipeline = scratch_pipeline(tmp_path, prefix)
    before = checksums(prefix, ["names", "amounts", "others"])

    run = run_runner(pipeline, "--select", f"030_{prefix}_amounts,035_missing")

    assert run.returncode == 2, run.explain()
    assert "no file '035_missing'" in run.error_lines[0] and f"030_{prefix}_amounts" in run.error_lines[0]
    assert checksums(prefix, ["names", "amounts", "others"]) == before


def test_show_prints_the_rows_without_a_lock_a_staging_table_or_a_publish(tmp_path: Path, prefix: str) -> None:
    pipeline = scratch_pipeline(tmp_path, prefix)
    before = checksums(prefix, ["names", "amounts", "others"])
    # Another run holds the pipeline's lock all along: show must not need it.
    holder = target_for(config.connection("mysql"), pipeline.name)
    holder.lock()
    try:
        shown = show(pipeline / f"030_{prefix}_amounts.sql", "--limit", "2")
        check = show(pipeline / "100_check_amounts.sql")
    finally:
        holder.unlock()

    assert shown.returncode == 0, shown.stderr[-3000:]
    table = [[cell.strip() for cell in line.strip("|").split("|")] for line in shown.stdout.splitlines()[:4]]
    assert table[0] == ["id", "amount"], shown.stdout
    assert all(rule.endswith(":") and set(rule[:-1]) == {"-"} for rule in table[1]), shown.stdout  # numbers: right
    assert {tuple(row) for row in table[2:]} < {("1", "10.50"), ("2", "0.99"), ("3", "12345678.90")}, shown.stdout
    assert f"2 row(s) of 030_{prefix}_amounts.sql (the first 2" in shown.stdout
    assert "nothing was published" in shown.stdout
    assert check.returncode == 0, check.stderr[-3000:]
    assert "0 offending row(s) of check 100_check_amounts.sql" in check.stdout, check.stdout
    assert checksums(prefix, ["names", "amounts", "others"]) == before
    assert tables_like("mysql", prefix) == sorted(f"{prefix}_{n}" for n in ("amounts", "names", "others"))
