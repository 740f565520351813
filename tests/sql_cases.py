"""SQL unit tests as data: given rows per table -> the rows one SQL file must return.

A case file `tests/sql/<pipeline>/<file-stem>.yml` tests `sql/<pipeline>/<file-stem>.sql`
(or the file named by a top-level `sql:` key). It runs the file through the runner's own
`transform` on local Spark, with the `given` tables registered as its views, and compares the
result with `expect` using chispa (row order ignored). No server, no Python to write:

    cases:
      - name: cancelled orders count in their own status
        given:
          orders:
            schema: order_id int, user_id int, status string, total_amount decimal(10,2)
            rows:
              - [1, 7, Cancelled, 10.50]
        expect:
          schema: user_id int, status string, order_count bigint
          rows:
            - [7, Cancelled, 1]

Example:
    >>> run_case(spark, load_sql_file(path), case)   # raises AssertionError with a row diff
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner import config
from runner.engine.execute import transform
from runner.model.pipeline import load_sql_file
from runner.engine.session import driver_java_options

_SESSION = None


def local_spark():
    """One small local SparkSession for all SQL unit tests (no jars, no UI)."""
    global _SESSION
    if _SESSION is None:
        from pyspark.sql import SparkSession

        logging.getLogger("py4j").setLevel(logging.WARNING)
        _SESSION = (SparkSession.builder.master("local[2]").appName("sql-unit-tests")
                    .config("spark.ui.enabled", "false")
                    .config("spark.driver.bindAddress", "127.0.0.1")
                    .config("spark.driver.host", "127.0.0.1")
                    .config("spark.sql.shuffle.partitions", "2")
                    .config("spark.sql.session.timeZone", "UTC")
                    .config("spark.driver.extraJavaOptions", driver_java_options(with_archive=False))
                    .getOrCreate())
        _SESSION.sparkContext.setLogLevel("ERROR")
    return _SESSION


def _convert(value: Any, data_type) -> Any:
    """A YAML scalar as the Python value Spark expects for `data_type`."""
    from pyspark.sql import types as T

    if value is None:
        return None
    if isinstance(data_type, T.DecimalType):
        return Decimal(str(value))
    if isinstance(data_type, (T.TimestampType, T.TimestampNTZType)):
        return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if isinstance(data_type, T.DateType):
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    if isinstance(data_type, T.BinaryType):
        return bytearray(value.encode() if isinstance(value, str) else value)
    if isinstance(data_type, (T.FloatType, T.DoubleType)):
        return float(value)
    if isinstance(data_type, T.StringType):
        return value if isinstance(value, str) else str(value)
    return value


def frame(spark, table: dict, where: str):
    """A DataFrame from `{schema: "a int, b string", rows: [[1, x], {a: 2, b: y}]}`."""
    from pyspark.sql.types import StructType

    if not isinstance(table, dict) or "schema" not in table:
        raise ValueError(f"{where}: needs `schema:` (Spark DDL, e.g. `id int, name string`) and `rows:`")
    schema = StructType.fromDDL(table["schema"])
    rows = []
    for number, row in enumerate(table.get("rows") or [], 1):
        values = [row.get(name) for name in schema.names] if isinstance(row, dict) else list(row)
        if len(values) != len(schema.fields):
            raise ValueError(f"{where}, row {number}: {len(values)} values for {len(schema.fields)} columns "
                             f"({', '.join(schema.names)})")
        rows.append([_convert(v, f.dataType) for v, f in zip(values, schema.fields)])
    return spark.createDataFrame(rows, schema)


def run_case(spark, sql_path: Path, case: dict, where: str) -> None:
    """Run one case; raise AssertionError with chispa's readable diff when the rows differ."""
    from chispa import assert_df_equality
    from chispa.dataframe_comparer import DataFramesNotEqualError
    from chispa.schema_comparer import SchemasNotEqualError

    sql_file = load_sql_file(sql_path)
    if sql_file.problems:
        raise AssertionError("\n".join(map(str, sql_file.problems)))
    given = {name: frame(spark, table, f"{where}: given {name}") for name, table in (case.get("given") or {}).items()}
    missing = [t for t in sql_file.reads if t not in given]
    if missing:
        raise ValueError(f"{where}: {sql_path.name} reads {', '.join(missing)}; add them under `given:`")
    actual = transform(spark, sql_file, given.__getitem__)
    expected_spec = case.get("expect")
    if expected_spec is None:
        raise ValueError(f"{where}: needs `expect:` with `schema:` and `rows:`")
    if "schema" not in expected_spec:  # e.g. a passing check: `expect: {rows: []}`
        rows = actual.collect()
        expected_rows = expected_spec.get("rows") or []
        assert not expected_rows, f"{where}: `expect:` with rows needs a `schema:`"
        assert not rows, f"{where}: expected no rows, got {len(rows)}:\n" + "\n".join(str(r.asDict()) for r in rows[:10])
        return
    expected = frame(spark, expected_spec, f"{where}: expect")
    try:
        assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True,
                           ignore_metadata=True, underline_cells=True)
    except (DataFramesNotEqualError, SchemasNotEqualError) as error:
        what = "schemas" if isinstance(error, SchemasNotEqualError) else "rows"
        raise AssertionError(f"{where}: the {what} differ; df1 = actual (what {sql_path.name} returned), "
                             f"df2 = expected (the case's `expect:`){error}") from None


class SqlCaseFile(pytest.File):
    """A `tests/sql/**.yml` file: one pytest item per case."""

    def collect(self):
        spec = yaml.safe_load(self.path.read_text()) or {}
        sql_path = self.sql_path(spec)
        for number, case in enumerate(spec.get("cases") or [], 1):
            name = case.get("name") or f"case {number}"
            yield SqlCase.from_parent(self, name=name, case=case, sql_path=sql_path)

    def sql_path(self, spec: dict) -> Path:
        if spec.get("sql"):
            return (config.ROOT / spec["sql"]).resolve()
        pipeline = self.path.parent.name
        return config.ROOT / "sql" / pipeline / f"{self.path.stem}.sql"


class SqlCase(pytest.Item):
    def __init__(self, *, case: dict, sql_path: Path, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        self.sql_path = sql_path

    def runtest(self) -> None:
        if not self.sql_path.exists():
            raise FileNotFoundError(f"{self.path}: no SQL file {self.sql_path} for these cases")
        run_case(local_spark(), self.sql_path, self.case, f"{self.path.name} [{self.name}]")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, (AssertionError, ValueError, FileNotFoundError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, f"{self.path.name}: {self.name}"


def pytest_collect_file(parent, file_path: Path):
    """pytest hook: collect SQL unit cases under tests/sql/."""
    sql_cases = config.ROOT / "tests" / "sql"
    if file_path.suffix in (".yml", ".yaml") and sql_cases in file_path.parents:
        return SqlCaseFile.from_parent(parent, path=file_path)
    return None
