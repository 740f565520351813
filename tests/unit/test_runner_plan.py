"""`runner plan` and the run order: files in file-name order, what each reads and writes, and
which earlier files each must wait for (`runner.model.flow`).

The sample pipeline (tests/fixtures/runner/sample) has a view, each write mode and a check:
    010_completed_orders (view) <- 020_user_totals (overwrite) <- 100_check (reads mysql.user_totals)
    030_orders_appended (append), 040_user_status (merge): independent
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner import config
from runner.engine.execute import executable_sql
from runner.model.flow import pipeline_flow
from runner.model.pipeline import load_pipeline
from runner.model.plan import plan
from tests.fixtures.runner.pipelines import SAMPLE, settings_toml, write_pipeline

SAMPLE_FILES = ["010_completed_orders.sql", "020_user_totals.sql", "030_orders_appended.sql",
                "040_user_status.sql", "100_check_totals_not_negative.sql"]


@pytest.fixture(scope="module")
def sample_plan() -> list[str]:
    return plan(load_pipeline(SAMPLE)).splitlines()


def file_block(lines: list[str], name: str) -> str:
    """The two lines the plan prints for one file: what it reads, then what it writes."""
    index = next(i for i, line in enumerate(lines) if line.strip().startswith(name))
    return "\n".join(lines[index:index + 2])


def test_plan_starts_with_source_target_and_schedule(sample_plan) -> None:
    assert sample_plan[0] == "pipeline sample: postgresql -> mysql, schedule @daily"
    assert "a view, each write mode and a check" in sample_plan[1]


def test_plan_lists_files_in_file_name_order(sample_plan) -> None:
    named = [name for line in sample_plan for name in SAMPLE_FILES if line.strip().startswith(name)]
    assert named == SAMPLE_FILES


@pytest.mark.parametrize(("name", "reads", "writes"), [
    ("010_completed_orders.sql", "reads orders", "-> view completed_orders"),
    ("020_user_totals.sql", "reads completed_orders, users", "-> mysql.user_totals (overwrite, keys user_id)"),
    ("030_orders_appended.sql", "reads orders", "-> mysql.order_log (append)"),
    ("040_user_status.sql", "reads users", "-> mysql.user_status (merge, keys user_id)"),
    ("100_check_totals_not_negative.sql", "reads mysql.user_totals", "-> check (fails the run if it returns rows)"),
])
def test_plan_shows_what_each_file_reads_and_writes(sample_plan, name, reads, writes) -> None:
    block = file_block(sample_plan, name)
    assert block.splitlines()[0].rstrip().endswith(reads), block
    assert block.splitlines()[1].strip() == writes, block


def test_plan_names_the_source_tables_the_run_registers(sample_plan) -> None:
    """Only orders and users come from postgresql; mysql.user_totals is this run's staged result,
    so the plan must not say it is registered from postgresql."""
    assert sample_plan[-1] == "sources registered from postgresql: orders, users"


def test_cli_plan_prints_the_plan_and_exits_0() -> None:
    result = subprocess.run([sys.executable, "-m", "runner", "plan", str(SAMPLE.relative_to(config.ROOT))],
                            cwd=config.ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "MYSQL_APP_PORT": "1", "POSTGRESQL_APP_PORT": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip("\n") == plan(load_pipeline(SAMPLE))


def test_cli_plan_of_an_unknown_pipeline_exits_2_naming_it() -> None:
    result = subprocess.run([sys.executable, "-m", "runner", "plan", "no_such_pipeline"], cwd=config.ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: no pipeline 'no_such_pipeline'")


def test_files_run_in_file_name_order(tmp_path: Path) -> None:
    names = ["100_check.sql", "020_b.sql", "010_a.sql", "030_c.sql"]
    directory = write_pipeline(tmp_path / "p", {name: "select 1 as x\n" for name in names},
                               settings_toml(tables=()))
    assert [f.name for f in load_pipeline(directory).files] == sorted(names)


def test_target_defaults_to_the_file_name_without_its_prefix() -> None:
    targets = [f.target for f in load_pipeline(SAMPLE).files]
    assert targets == ["completed_orders", "user_totals", "order_log", "user_status", "check_totals_not_negative"]


def dependencies(pipeline) -> dict[int, list[int]]:
    return {step.index: list(step.waits_for) for step in pipeline_flow(pipeline).steps}


def test_source_tables_are_those_read_and_not_produced_earlier() -> None:
    assert pipeline_flow(load_pipeline(SAMPLE)).registered()[:2] == ["orders", "users"]


def test_sample_dependencies() -> None:
    # 020 reads 010's view; the check reads 020's staged table; 010, 030 and 040 wait for nothing.
    assert dependencies(load_pipeline(SAMPLE)) == {0: [], 1: [0], 2: [], 3: [], 4: [1]}


def test_reading_another_connection_is_not_a_dependency(tmp_path: Path) -> None:
    # postgresql.user_totals is not where this pipeline (target mysql) writes user_totals.
    directory = write_pipeline(tmp_path / "p", {
        "010_user_totals.sql": "select user_id from users\n",
        "020_check.sql": "-- mode: check\nselect * from postgresql.user_totals where user_id is null\n",
    })
    assert dependencies(load_pipeline(directory)) == {0: [], 1: []}


def test_a_view_read_by_several_later_files_is_waited_for_by_each(tmp_path: Path) -> None:
    directory = write_pipeline(tmp_path / "p", {
        "010_recent.sql": "-- mode: view\nselect * from orders\n",
        "020_a.sql": "select order_id from recent\n",
        "030_b.sql": "select user_id from recent\n",
        "040_c.sql": "select a.order_id from a join b on a.order_id = b.user_id\n",
    })
    assert dependencies(load_pipeline(directory)) == {0: [], 1: [0], 2: [0], 3: [1, 2]}


def test_a_later_writer_waits_for_earlier_readers_of_the_source_it_shadows(tmp_path: Path) -> None:
    """010 reads the *source* table users; 020 publishes its result as the view `users`. Run
    concurrently, 020 can replace the view before 010 reads it, so 010 would read 020's result:
    020 must wait for 010."""
    directory = write_pipeline(tmp_path / "p", {
        "010_user_count.sql": "select count(*) as n from users\n",
        "020_users.sql": "-- keys: user_id\nselect user_id from orders\n",
    })
    assert dependencies(load_pipeline(directory))[1] == [0]


def test_a_later_writer_waits_for_earlier_readers_of_its_published_table(tmp_path: Path) -> None:
    """010 reads the published mysql.user_totals, 020 rewrites it. Run concurrently, 010 can
    read 020's half-loaded staging table (it counts as staged as soon as it is created)."""
    directory = write_pipeline(tmp_path / "p", {
        "010_previous_totals.sql": "-- mode: view\nselect count(*) as n from mysql.user_totals\n",
        "020_user_totals.sql": "-- keys: user_id\nselect user_id from orders\n",
    })
    assert dependencies(load_pipeline(directory))[1] == [0]


def test_executable_sql_renames_qualified_tables_and_keeps_every_line(tmp_path: Path) -> None:
    sql = ("-- mode: check\n\nselect *\nfrom mysql.user_totals\nwhere user_id not in (\n"
           "    select user_id from postgresql.users\n)\n")
    directory = write_pipeline(tmp_path / "p", {"010_check.sql": sql})
    text = executable_sql(load_pipeline(directory).files[0])
    assert text.splitlines() == ["-- mode: check", "", "select *", "from mysql__user_totals",
                                 "where user_id not in (", "    select user_id from postgresql__users", ")"]


def test_a_result_is_kept_only_for_the_files_that_read_it(tmp_path: Path) -> None:
    """020 waits for 010 but does not read its result: nothing needs 010's result kept."""
    directory = write_pipeline(tmp_path / "p", {
        "010_user_count.sql": "select count(*) as n from users\n",
        "020_users.sql": "-- keys: user_id\nselect user_id from orders\n",
    })
    assert pipeline_flow(load_pipeline(directory)).readers == {0: 0, 1: 0}
    assert pipeline_flow(load_pipeline(SAMPLE)).readers == {0: 1, 1: 1, 2: 0, 3: 0, 4: 0}
