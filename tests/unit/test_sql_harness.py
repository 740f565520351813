"""The SQL unit-case harness (`tests.sql_cases`): a yml of given/expect rows runs an SQL file on
local Spark; a passing case passes, and a failing one shows a row diff a person can read.

The harness runs as a user runs it: pytest in a subprocess, on a temporary yml + sql pair
(the yml's `sql:` key names the SQL file). Cases are collected automatically only under
tests/sql/, so the temporary folder's conftest hands its yml to the harness's own collector.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runner import config
from tests.sql_cases import pytest_collect_file

ANSI = re.compile(r"\x1b\[[0-9;]*m")

CONFTEST = '''\
from tests.sql_cases import SqlCaseFile


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".yml":
        return SqlCaseFile.from_parent(parent, path=file_path)
'''

SQL = """\
-- mode: overwrite
-- keys: user_id

select
    user_id,
    count(*) as order_count,
    sum(total_amount) as total_spent

from orders
group by user_id
"""

ORDERS = {"schema": "order_id int, user_id int, total_amount decimal(10,2)",
          "rows": [[1, 7, 10.50], [2, 7, 4.50], [3, 8, 1.00]]}
EXPECT_SCHEMA = "user_id int, order_count bigint, total_spent decimal(20,2)"


def cases(sql_path: Path) -> dict:
    return {"sql": str(sql_path), "cases": [
        {"name": "totals per user",
         "given": {"orders": ORDERS},
         "expect": {"schema": EXPECT_SCHEMA, "rows": [[8, 1, 1.00], [7, 2, 15.00]]}},   # any row order
        {"name": "a wrong order count",
         "given": {"orders": ORDERS},
         "expect": {"schema": EXPECT_SCHEMA, "rows": [[7, 3, 15.00], [8, 1, 1.00]]}},
        {"name": "orders not given",
         "given": {"users": {"schema": "user_id int", "rows": [[7]]}},
         "expect": {"schema": EXPECT_SCHEMA, "rows": []}},
    ]}


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess:
    """One pytest run over the three cases (one local Spark start)."""
    folder = tmp_path_factory.mktemp("sql_cases")
    (folder / "conftest.py").write_text(CONFTEST)
    sql_path = folder / "010_user_totals.sql"
    sql_path.write_text(SQL)
    (folder / "user_totals.yml").write_text(yaml.safe_dump(cases(sql_path), sort_keys=False))
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", str(folder)],
                            cwd=folder, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "PYTHONPATH": str(config.ROOT)})
    result.stdout = ANSI.sub("", result.stdout)
    return result


def section(output: str, case: str) -> str:
    """The failure report of one case: from its `___ name ___` header to the next header,
    without what pytest captured from Spark's console."""
    match = re.search(rf"_+ (?:\S+: )?{re.escape(case)} _+\n(.*?)(?=\n_{{3,}} |\n=+ )", output, re.DOTALL)
    assert match, f"no failure section for {case!r} in:\n{output}"
    return re.split(r"\n-+ Captured ", match.group(1))[0]


def test_each_case_is_a_test(session) -> None:
    assert "1 passed" in session.stdout and "2 failed" in session.stdout, session.stdout[-3000:]


def test_a_matching_case_passes_whatever_the_row_order(session) -> None:
    assert "PASSED user_totals.yml::totals per user" in session.stdout, session.stdout[-3000:]


def test_a_failing_case_shows_the_differing_rows_side_by_side(session) -> None:
    report = section(session.stdout, "a wrong order count")
    diff_rows = [line for line in report.splitlines() if "order_count=2" in line and "order_count=3" in line]
    assert diff_rows, report
    assert "user_id=7" in diff_rows[0] and "total_spent=15.00" in diff_rows[0]


def test_a_failing_case_report_is_short_and_without_harness_internals(session) -> None:
    """What an analyst sees is the diff, not a traceback through chispa's source."""
    report = section(session.stdout, "a wrong order count")
    assert "def assert_" not in report and "chispa/" not in report, report
    assert len(report.splitlines()) <= 25, report


def test_a_failing_case_says_which_side_is_actual_and_which_expected(session) -> None:
    """chispa labels its columns df1 and df2; the report must say which one the SQL returned."""
    report = section(session.stdout, "a wrong order count")
    labelled = [line for line in report.splitlines() if "assert_df_equality(" not in line
                and re.search(r"\bactual\b", line, re.I) and re.search(r"\bexpected\b", line, re.I)]
    assert labelled, report


def test_a_missing_given_table_is_named(session) -> None:
    report = section(session.stdout, "orders not given")
    assert "reads orders; add them under `given:`" in report, report


def test_yml_under_tests_sql_is_collected_and_other_yml_is_not(tmp_path: Path) -> None:
    assert pytest_collect_file(None, tmp_path / "cases.yml") is None
    assert pytest_collect_file(None, config.ROOT / "docker-compose.yml") is None


def test_pytest_collects_every_case_of_a_yml_under_tests_sql() -> None:
    case_files = sorted((config.ROOT / "tests" / "sql").rglob("*.yml"))
    assert case_files, "no SQL case file under tests/sql: the harness would collect nothing and prove nothing"
    case_file = case_files[0]
    names = [case.get("name") for case in yaml.safe_load(case_file.read_text())["cases"]]
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                             str(case_file.relative_to(config.ROOT))],
                            cwd=config.ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert [line.split("::", 1)[1] for line in collected] == names
