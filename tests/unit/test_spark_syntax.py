"""`runner validate` rejects what Spark's own parser rejects, at file:line, with no SparkSession:
each broken file below gives exactly one problem at its line, each valid Spark SQL file gives
none, and the sqlglot-only fast path (the DAG files' parse-time check) agrees wherever it decides.

Real components: Catalyst's parser in a real JVM, sqlglot, real files in a temporary pipeline.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.model.pipeline import load_pipeline, load_sql_file
from runner.model.spark_parser import spark_verdicts
from runner.model.validate import validate
from tests.fixtures.runner.pipelines import write_pipeline

HEADER = "-- mode: overwrite\n-- keys: status\n\n"  # the SQL starts on line 4

# (name, SQL after the header, line of the mistake in the file)
BROKEN = [
    ("trailing_comma_group_by", "select status, count(*) as n\nfrom orders\ngroup by status,\n", 6),
    ("trailing_comma_before_from", "select\n    status,\n    user_id,\nfrom orders\n", 6),
    ("doubled_comma", "select status,, user_id\nfrom orders\n", 4),
    ("empty_group_by", "select status\nfrom orders\ngroup by\norder by status\n", 6),
    ("empty_order_by", "select status\nfrom orders\norder by\n", 6),
    ("unbalanced_open", "select (status\nfrom orders\n", 5),
    ("unbalanced_close", "select status)\nfrom orders\n", 4),
    ("keyword_as_table_alias", "select status\nfrom orders as on\n", 5),
    ("keyword_as_bare_table_alias", "select status\nfrom orders full\nwhere status = 'x'\n", 6),
    ("empty_in_list", "select status\nfrom orders\nwhere status in ()\n", 6),
    ("empty_partition_by", "select status, row_number() over (partition by) as n\nfrom orders\n", 4),
    ("unclosed_string", "select status\nfrom orders\nwhere status = 'x\n", 6),
]

# Mistakes sqlglot's own parser rejects, reporting its own line (where it noticed): the verdict
# is Spark's, the line may differ.
SQLGLOT_LINE = {"keyword_as_bare_table_alias", "unclosed_string"}

VALID = [
    ("plain", "select status, count(*) as n\nfrom orders\ngroup by status\n"),
    ("cte_and_window", "with o as (select * from orders)\nselect status, row_number() over (partition by status "
                       "order by user_id) as n\nfrom o\nqualify n = 1\n"),
    ("group_by_all_and_filter", "select status, count(*) filter (where user_id > 0) as n\nfrom orders\ngroup by all\n"),
    ("casts", "select cast(status as varchar(20)) as status, user_id::bigint as user_id,\n"
              "    try_cast(user_id as int) as u\nfrom orders\n"),
    ("quoted_keywords", "select `from`, `order` as `left`\nfrom orders\n"),
    ("keyword_column_alias", "select status as group\nfrom orders\n"),  # Spark takes it; so must we
    ("semicolon", "select status\nfrom orders;\n"),
    ("joins", "select o.status\nfrom orders o\nleft join users u on o.user_id = u.user_id\n"
              "left semi join users v using (user_id)\n"),
    ("lateral_view", "select status, x\nfrom orders\nlateral view explode(array(1, 2)) t as x\n"),
    ("pivot", "select * from orders pivot (count(*) for status in ('a', 'b'))\n"),
]


def problems(tmp_path: Path, name: str, body: str) -> list[str]:
    directory = write_pipeline(tmp_path / name, {f"010_{name}.sql": HEADER + body})
    return [str(p).split("/")[-1] for p in validate(load_pipeline(directory))]


@pytest.mark.parametrize(("name", "body", "line"), BROKEN, ids=[b[0] for b in BROKEN])
def test_validate_reports_what_spark_rejects_at_its_line(tmp_path: Path, name: str, body: str, line: int) -> None:
    found = problems(tmp_path, name, body)
    assert len(found) == 1 and found[0].startswith(f"010_{name}.sql:{line}: syntax error"), found


def test_spark_rejections_are_read_right_while_a_spark_session_runs_in_the_process() -> None:
    """A SparkSession (the SQL unit cases keep one) installs pyspark's error conversion for every
    py4j gateway in the process, the parser's too: each rejection must still be read as Spark's."""
    from tests.sql_cases import local_spark

    local_spark()
    # Spark's own rejections (a comma before FROM is the runner's rule), three times over.
    bodies = [body for name, body, _ in BROKEN if name != "trailing_comma_before_from"] * 3
    verdicts = spark_verdicts([HEADER + body for body in bodies])
    assert all(v and v.message for v in verdicts), verdicts


@pytest.mark.parametrize(("name", "body"), VALID, ids=[v[0] for v in VALID])
def test_validate_accepts_what_spark_accepts(tmp_path: Path, name: str, body: str) -> None:
    assert problems(tmp_path, name, body) == []
    assert spark_verdicts([HEADER + body]) == [None]


def test_a_file_spark_accepts_and_sqlglot_rejects_is_not_an_error(tmp_path: Path) -> None:
    # Spark reads `order` as the table alias; sqlglot cannot parse `on` as a column alias.
    body = "select status on\nfrom orders\n"
    assert spark_verdicts([HEADER + body]) == [None]
    assert load_sql_file(write_pipeline(tmp_path / "p", {"010_p.sql": HEADER + body}) / "010_p.sql").problems
    assert problems(tmp_path, "q", body) == []


def fast_problems(tmp_path: Path, name: str, body: str) -> list:
    """What the fast path (the DAG files at parse time, and `run` before its session) reports."""
    return validate(load_pipeline(write_pipeline(tmp_path / name, {f"010_{name}.sql": HEADER + body})),
                    strict=False)


@pytest.mark.parametrize(("name", "body", "line"), BROKEN, ids=[b[0] for b in BROKEN])
def test_fast_path_gives_the_same_verdict_where_it_decides(tmp_path: Path, name: str, body: str, line: int) -> None:
    fast = fast_problems(tmp_path, name, body)
    assert fast, "the fast path let through what Spark rejects"
    if name not in SQLGLOT_LINE:
        assert [p.line for p in fast] == [line], [str(p) for p in fast]


@pytest.mark.parametrize(("name", "body"), VALID, ids=[v[0] for v in VALID])
def test_fast_path_accepts_valid_spark_sql(tmp_path: Path, name: str, body: str) -> None:
    assert [str(p) for p in fast_problems(tmp_path, name, body)] == []


def test_the_project_pipelines_are_valid_for_spark() -> None:
    for name in ("marts", "replicate", "stream"):
        assert [str(p) for p in validate(load_pipeline(name))] == []
