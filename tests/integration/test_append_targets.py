"""An append into a table that already exists: one the result cannot fill fails before anything
is loaded, naming the column; columns that fill themselves (identity, auto-increment, generated)
are not asked of the result. On the real PostgreSQL and MariaDB."""

from __future__ import annotations

import uuid

import pytest
from pyspark.sql import types as T

from runner.errors import RunnerError
from runner.targets.base import target_for
from tests.fixtures.scratch import Scratch

pytestmark = pytest.mark.integration

RESULT = T.StructType([T.StructField("email", T.StringType()), T.StructField("n", T.IntegerType())])
TABLES = {
    "postgresql": ("create table events (id int generated always as identity primary key, email text, n int, "
                   "n2 int generated always as (n * 2) stored{extra})"),
    "mysql": ("create table events (id int auto_increment primary key, email text, n int, "
              "n2 int as (n * 2) stored{extra})"),
}


@pytest.fixture(scope="module")
def scratch():
    place = Scratch(f"t_append_{uuid.uuid4().hex[:8]}")
    place.create()
    yield place
    place.drop()


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
@pytest.mark.parametrize("extra", ["", ", note text not null"])
def test_only_a_column_that_needs_a_value_the_result_lacks_stops_an_append(scratch: Scratch, kind: str,
                                                                           extra: str) -> None:
    connection = scratch.pg_connection if kind == "postgresql" else scratch.mysql_connection
    db = connection.connect()
    with db.cursor() as cursor:
        cursor.execute("drop table if exists events")
        cursor.execute(TABLES[kind].format(extra=extra))
    db.commit()
    db.close()
    target = target_for(connection, "append_test")
    if not extra:
        target.prepare_staging("events", "append", (), RESULT)
        return
    with pytest.raises(RunnerError, match=r"table events cannot take this append: its column\(s\) note are NOT NULL"):
        target.prepare_staging("events", "append", (), RESULT)
