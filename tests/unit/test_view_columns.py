"""A column a file takes from an earlier file's result that the result does not have is an
error at file:line; what cannot be known without Spark (a `*`, several sources) is never one."""

from __future__ import annotations

from pathlib import Path

from runner.model.pipeline import load_pipeline
from runner.model.validate import validate
from tests.fixtures.runner.pipelines import write_pipeline

VIEW = "-- mode: view\n\nselect\n    order_id,\n    user_id as customer_id,\n    total_amount\nfrom orders\n"


def problems(tmp_path: Path, reader: str, view: str = VIEW) -> list[str]:
    directory = write_pipeline(tmp_path / "p", {"010_completed.sql": view, "020_totals.sql": reader})
    return [str(p).split("/")[-1] for p in validate(load_pipeline(directory))]


def test_a_column_the_view_lacks_is_reported_at_its_line(tmp_path: Path) -> None:
    reader = ("-- keys: user_id\n\nselect\n    user_id,\n    sum(total_amount) as total\n"
              "from completed\ngroup by user_id\n")
    found = problems(tmp_path, reader)
    assert [f.split(": ")[0] for f in found] == ["020_totals.sql:4", "020_totals.sql:7"], found
    assert "'user_id' is not in 'completed'" in found[0] and "customer_id" in found[0]


def test_a_qualified_column_through_a_table_alias_is_checked(tmp_path: Path) -> None:
    reader = ("select\n    c.customer_id,\n    c.status\n"
              "from completed as c\njoin users u on c.customer_id = u.user_id\n")
    assert [f.split(": ")[0] for f in problems(tmp_path, reader)] == ["020_totals.sql:3"]


def test_columns_the_view_has_are_valid_whatever_their_case(tmp_path: Path) -> None:
    reader = ("select\n    Customer_ID,\n    sum(total_amount) as total\n"
              "from completed\ngroup by customer_id\norder by total\n")
    assert problems(tmp_path, reader) == []


def test_a_view_of_star_is_not_checked(tmp_path: Path) -> None:
    view = "-- mode: view\n\nselect * from orders\n"
    assert problems(tmp_path, "select anything from completed\n", view) == []


def test_an_unqualified_column_with_two_sources_is_left_to_spark(tmp_path: Path) -> None:
    reader = "select\n    first_name\nfrom completed\njoin users on completed.customer_id = users.user_id\n"
    assert problems(tmp_path, reader) == []
