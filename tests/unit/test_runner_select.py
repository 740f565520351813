"""`run --select` and `plan --select` decide what runs and what is published from the pipeline
model alone (`Flow.select`), with no Spark and no database; `show`'s table and the lineage
picture are plain text too. The runs themselves are in tests/integration/test_select_and_show.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runner import config
from runner.engine.show import format_table
from runner.errors import InvalidPipeline
from runner.model.diagram import diagram, write_docs
from runner.model.flow import pipeline_flow
from runner.model.pipeline import load_pipeline
from runner.model.plan import plan
from tests.fixtures.runner.pipelines import settings_toml, write_pipeline


def chain(tmp_path: Path) -> Path:
    """A view, two writers over it (the second reading the first's result), a check of each."""
    return write_pipeline(tmp_path / "chain", {
        "010_paid.sql": "-- mode: view\nselect * from orders where status = 'paid'\n",
        "020_totals.sql": "select user_id, sum(amount) as amount from paid group by user_id\n",
        "030_ranked.sql": "select user_id, rank() over (order by amount desc) as r from totals\n",
        "040_users_copy.sql": "-- target: users_copy\nselect * from users\n",
        "100_check_totals.sql": "-- mode: check\nselect * from mysql.totals where amount < 0\n",
        "110_check_ranked.sql": "-- mode: check\nselect * from ranked where r is null\n",
    }, settings_toml(tables=("orders", "users")))


def names(flow) -> list[str]:
    return [step.file.path.stem for step in flow.steps]


def test_select_runs_the_file_its_upstream_views_and_the_checks_that_read_it(tmp_path: Path) -> None:
    selected = pipeline_flow(load_pipeline(chain(tmp_path))).select(["020_totals"])

    assert names(selected) == ["010_paid", "020_totals", "100_check_totals"]
    assert selected.writes() == [("mysql", "totals")]


def test_an_earlier_result_a_selected_file_reads_is_computed_but_not_published(tmp_path: Path) -> None:
    selected = pipeline_flow(load_pipeline(chain(tmp_path))).select(["030_ranked"])

    assert names(selected) == ["010_paid", "020_totals", "030_ranked", "110_check_ranked"]
    assert selected.writes() == [("mysql", "ranked")]
    totals = next(step for step in selected.steps if step.file.target == "totals")
    assert totals.writes and not selected.publishes(totals)


def test_a_file_left_out_holds_up_no_selected_file(tmp_path: Path) -> None:
    selected = pipeline_flow(load_pipeline(chain(tmp_path))).select(["040_users_copy"])

    assert names(selected) == ["040_users_copy"]
    assert all(not step.waits_for for step in selected.steps)


def test_show_leaves_out_the_checks(tmp_path: Path) -> None:
    shown = pipeline_flow(load_pipeline(chain(tmp_path))).select(["030_ranked"], checks=False)

    assert names(shown) == ["010_paid", "020_totals", "030_ranked"]


def test_an_unknown_stem_is_an_error_naming_it_and_the_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidPipeline) as error:
        pipeline_flow(load_pipeline(chain(tmp_path))).select(["020_totals", "025_nope"])

    assert "'025_nope'" in str(error.value) and "020_totals" not in str(error.value).split("'025_nope'")[0]
    assert "010_paid, 020_totals, 030_ranked, 040_users_copy, 100_check_totals, 110_check_ranked" in str(error.value)


def test_cli_run_with_an_unknown_stem_exits_2_before_any_spark(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "runner", "run", str(chain(tmp_path)), "--select", "999_nope"],
                            capture_output=True, text=True, cwd=config.ROOT, timeout=120, check=False)

    assert result.returncode == 2, result.stderr
    assert "no file '999_nope'" in result.stderr and "(its files: 010_paid," in result.stderr
    assert "SparkSession" not in result.stderr and "Spark" not in result.stderr.split("error:")[0]


def test_plan_select_marks_what_is_computed_but_not_published(tmp_path: Path) -> None:
    text = plan(load_pipeline(chain(tmp_path)), ["030_ranked"])

    assert "040_users_copy" not in text and "100_check_totals" not in text
    assert "mysql.totals (overwrite) (computed for the selected files, not published)" in text
    assert "mysql.ranked (overwrite)\n" in text


def test_show_table_right_aligns_numbers_and_prints_null() -> None:
    assert format_table(["id", "name"], [(1, "Ann"), (10, None)]).splitlines() == [
        "| id | name |", "|---:|------|", "|  1 | Ann  |", "| 10 | NULL |"]


@pytest.mark.parametrize("name", ["replicate", "marts", "stream"])
def test_the_lineage_picture_has_every_file_source_and_target(name: str) -> None:
    flow = pipeline_flow(load_pipeline(name))
    svg = diagram(flow)

    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    for step in flow.steps:
        assert f">{step.file.name}</text>" in svg
        for read in step.reads:  # a view is drawn as the file that makes it
            assert f">{read.label}</text>" in svg or read.kind == "view"
    for connection, table in flow.writes():
        assert f">{connection}.{table}</text>" in svg


def test_docs_writes_a_picture_and_a_page_per_pipeline(tmp_path: Path) -> None:
    written = write_docs(["marts"], tmp_path)

    assert sorted(p.name for p in written) == ["index.html", "marts.html", "marts.svg"]
    assert "<svg" in (tmp_path / "marts.html").read_text()
    assert "010_mart_user_activity.sql" in (tmp_path / "marts.html").read_text()


def test_a_kafka_pipeline_must_select_every_writer_or_events_would_be_lost() -> None:
    result = subprocess.run([sys.executable, "-m", "runner", "run", "stream", "--select", "020_users"],
                            capture_output=True, text=True, cwd=config.ROOT, timeout=300, check=False)

    assert result.returncode == 2, result.stderr
    assert "select 030_stream_dead_letters.sql too" in result.stderr, result.stderr
