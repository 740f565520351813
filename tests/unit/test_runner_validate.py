"""`runner validate`: every listed mistake is caught with the right file:line, and the command
prints all of them as `path:line: message`, exits 1, and needs neither Spark nor a database.

The mistakes live in tests/fixtures/runner/invalid/ (one per file, each on a known line) and
tests/fixtures/runner/bad_settings/ (a pipeline.toml that is not TOML); variants that need
their own settings are written to temporary directories.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner import config
from runner.model.pipeline import Problem, load_pipeline
from runner.model.validate import validate
from tests.fixtures.runner.pipelines import BAD_SETTINGS, INVALID, SAMPLE, settings_toml, write_pipeline

# (file, line, words the message must contain) for each file of the `invalid` fixture.
EXPECTED = [
    ("010_syntax_error.sql", 6, "syntax error"),
    ("020_unknown_header_key.sql", 2, "unknown header key 'owner'"),
    ("030_unknown_mode.sql", 3, "unknown mode 'upsert'"),
    ("040_merge_without_keys.sql", 2, "merge needs keys"),
    ("050_reads_later_view.sql", 6, "060_order_counts.sql produces later"),
    ("080_user_totals_again.sql", 3, "already produced by 070_user_totals.sql"),
    ("090_insert_statement.sql", 4, "INSERT statement not allowed"),
    ("100_create_table.sql", 3, "CREATE statement not allowed"),
    ("110_unknown_table.sql", 8, "unknown table 'customers'"),
]


def relative(path: Path) -> str:
    return str(path.relative_to(config.ROOT))


def problems_of(directory: Path) -> list[Problem]:
    return validate(load_pipeline(directory))


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=config.ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


@pytest.fixture(scope="module")
def invalid_problems() -> list[Problem]:
    return problems_of(INVALID)


@pytest.mark.parametrize(("file", "line", "words"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_each_mistake_is_reported_at_its_file_and_line(invalid_problems, file, line, words) -> None:
    found = [p for p in invalid_problems if p.path.name == file]
    assert [(p.line, words in p.message) for p in found] == [(line, True)], "\n".join(map(str, found))


def test_files_without_mistakes_have_no_problems(invalid_problems) -> None:
    wrong = {name for name, _, _ in EXPECTED}
    assert [str(p) for p in invalid_problems if p.path.name not in wrong] == []


def test_problem_prints_as_path_line_message() -> None:
    problem = Problem(INVALID / "030_unknown_mode.sql", 3, "unknown mode 'upsert'")
    assert str(problem) == "tests/fixtures/runner/invalid/030_unknown_mode.sql:3: unknown mode 'upsert'"


def test_sample_pipeline_is_valid() -> None:
    assert problems_of(SAMPLE) == []


def test_settings_that_are_not_toml_are_reported_at_their_line() -> None:
    problems = problems_of(BAD_SETTINGS)
    assert [(p.path.name, p.line) for p in problems] == [("pipeline.toml", 4)]
    assert "not valid TOML" in problems[0].message


def test_unknown_setting_and_unknown_connections_are_reported(tmp_path: Path) -> None:
    settings = settings_toml(source="postgres", target="oracle", owner="analytics")
    directory = write_pipeline(tmp_path / "p", {"010_orders.sql": "select order_id from orders\n"}, settings)
    found = {(p.line, p.message.split(" ")[0]) for p in problems_of(directory)}
    # settings_toml writes: description, schedule, source (3), tables (4), owner (5), target (6)
    assert found == {(3, "source"), (5, "unknown"), (6, "target")}


@pytest.mark.parametrize("hint", ["broadcast(u)", "broadcast(users)", "merge(o, u)"])
def test_a_join_hint_names_relations_of_the_query_and_reads_nothing(tmp_path: Path, hint: str) -> None:
    """Spark resolves a hint's names to the query's relations, aliases included."""
    sql = (f"select /*+ {hint} */ o.order_id, u.email\nfrom orders as o\n"
           "inner join users as u on o.user_id = u.user_id\n")
    directory = write_pipeline(tmp_path / "p", {"010_orders.sql": sql})
    assert problems_of(directory) == []
    assert load_pipeline(directory).files[0].reads == ["orders", "users"]


def test_missing_settings_file_is_reported(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    directory.mkdir()
    (directory / "010_a.sql").write_text("select 1 as x\n")
    problems = problems_of(directory)
    assert [(p.path.name, p.line) for p in problems] == [("pipeline.toml", 1)]


def test_kafka_source_needs_a_topic(tmp_path: Path) -> None:
    directory = write_pipeline(tmp_path / "p", {"010_a.sql": "select 1 as x\n"},
                               settings_toml(source="kafka", tables=None, target="postgresql"))
    assert any("needs topic" in p.message for p in problems_of(directory))


@pytest.mark.parametrize("statement", [
    "update orders set status = 'x'",
    "delete from orders where order_id = 1",
    "merge into orders t using users s on t.user_id = s.user_id when matched then delete",
    "drop table orders",
    "truncate table orders",
    "insert overwrite table orders select * from orders",
    "with o as (select * from orders)\ninsert into order_log select * from o",
    "alter table orders add columns (note string)",
], ids=["update", "delete", "merge", "drop", "truncate", "insert-overwrite", "cte-insert", "alter"])
def test_ddl_and_dml_are_not_allowed(tmp_path: Path, statement: str) -> None:
    directory = write_pipeline(tmp_path / "p", {"010_orders.sql": f"-- mode: overwrite\n\n{statement}\n"})
    problems = problems_of(directory)
    assert [p.line for p in problems] == [3], "\n".join(map(str, problems))
    assert "not allowed" in problems[0].message


def test_two_statements_in_one_file_are_reported(tmp_path: Path) -> None:
    directory = write_pipeline(tmp_path / "p", {"010_orders.sql": "select 1 as x;\nselect 2 as y\n"})
    assert ["exactly one SELECT" in p.message for p in problems_of(directory)] == [True]


def test_file_name_without_numeric_prefix_is_reported(tmp_path: Path) -> None:
    directory = write_pipeline(tmp_path / "p", {"orders.sql": "select order_id from orders\n"})
    assert ["numeric prefix" in p.message for p in problems_of(directory)] == [True]


def test_qualified_read_needs_a_database_connection(tmp_path: Path) -> None:
    sql = "select *\nfrom orders\njoin warehouse.stock on orders.order_id = stock.order_id\n"
    directory = write_pipeline(tmp_path / "p", {"010_orders.sql": sql})
    assert [(p.line, "'warehouse' is not a database connection" in p.message)
            for p in problems_of(directory)] == [(3, True)]


def test_reading_a_source_table_that_a_later_file_also_writes_is_valid(tmp_path: Path) -> None:
    # `users` is a source table here, and later also a target: the earlier file reads the source.
    directory = write_pipeline(tmp_path / "p", {
        "010_user_count.sql": "select count(*) as n from users\n",
        "020_users.sql": "-- keys: user_id\nselect user_id from users\n",
    })
    assert problems_of(directory) == []


def test_unknown_table_is_reported_when_settings_declare_no_tables(tmp_path: Path) -> None:
    """A database source without `tables` must not let any name through: `customers` is not a
    source table the settings declare, and no file produces it."""
    directory = write_pipeline(tmp_path / "p", {"010_orders.sql": "select *\nfrom customers\n"},
                               settings_toml(tables=None))
    problems = problems_of(directory)
    assert problems, "a read of an undeclared table validated without a problem"
    assert any("customers" in p.message or "tables" in p.message for p in problems), "\n".join(map(str, problems))


def test_prose_comment_with_a_colon_after_the_header_is_not_a_header_key(tmp_path: Path) -> None:
    """The header is the leading block of `-- key: value` lines; a comment after the blank line
    that ends it is prose, even if it reads `-- Grain: one row per user` (as in sql/marts)."""
    sql = ("-- mode: overwrite\n-- keys: user_id\n\n-- Users and their orders.\n"
           "-- Grain: one row per user.\n\nselect user_id from users\n")
    directory = write_pipeline(tmp_path / "p", {"010_users.sql": sql})
    assert [str(p) for p in problems_of(directory)] == []
    sql_file = load_pipeline(directory).files[0]
    assert (sql_file.mode, sql_file.keys) == ("overwrite", ("user_id",))


def test_cli_prints_every_problem_as_path_line_message_and_exits_1() -> None:
    result = run_cli("validate", relative(INVALID), relative(BAD_SETTINGS))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    expected = [f"{relative(INVALID / f)}:{line}: " for f, line, _ in EXPECTED]
    expected.append(f"{relative(BAD_SETTINGS / 'pipeline.toml')}:4: ")
    assert [line[:len(prefix)] for line, prefix in zip(lines, expected)] == expected
    assert len(lines) == len(expected), result.stdout
    for line, (_, _, words) in zip(lines, EXPECTED):
        assert words in line
    assert f"{len(expected)} problem(s) in 2 pipeline(s)" in result.stderr


def test_cli_needs_neither_spark_nor_a_database() -> None:
    code = ("import sys; from runner.cli import main; code = main(sys.argv[1:]); "
            "assert 'pyspark' not in sys.modules, 'validate imported pyspark'; raise SystemExit(code)")
    result = subprocess.run([sys.executable, "-c", code, "validate", relative(INVALID)], cwd=config.ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "POSTGRESQL_APP_HOST": "db.invalid", "POSTGRESQL_APP_PORT": "1",
                                 "MYSQL_APP_HOST": "db.invalid", "MYSQL_APP_PORT": "1"})
    assert result.returncode == 1, result.stderr
    assert len(result.stdout.splitlines()) == len(EXPECTED)


def test_cli_reports_a_valid_pipeline_and_exits_0() -> None:
    result = run_cli("validate", relative(SAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 pipeline(s) valid" in result.stdout


def test_run_validates_first_and_exits_2_without_starting_anything() -> None:
    # Unreachable databases prove that nothing was contacted before validation failed.
    result = run_cli("run", relative(INVALID), MYSQL_APP_PORT="1", POSTGRESQL_APP_PORT="1")
    assert result.returncode == 2, result.stderr
    assert f"{relative(INVALID / '110_unknown_table.sql')}:8: " in result.stderr
    assert "nothing was run" in result.stderr
