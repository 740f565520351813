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

Values keep the characters written: every row value is read as text (never YAML 1.1's guesses,
which turn `no` into False and `0123` into 83) and converted by its column's Spark type only.
`null`, `~` or nothing is NULL; quote it (`"null"`) for the string. A value its column's type
cannot hold is an error naming the case file and line.

Example:
    >>> run_case(spark, sql_path, load_case_file(path)["cases"][0], where)   # AssertionError with a row diff
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner import config
from runner.engine.execute import transform
from runner.engine.session import driver_java_options
from runner.model.pipeline import load_sql_file

_SESSION = None


def local_spark():
    """One small local SparkSession for all SQL unit tests (no jars, no UI)."""
    global _SESSION
    if _SESSION is None:
        from pyspark.sql import SparkSession

        logging.getLogger("py4j").setLevel(logging.WARNING)
        config.jvm_on_loopback()
        _SESSION = (SparkSession.builder.master("local[2]").appName("sql-unit-tests")
                    .config("spark.ui.enabled", "false")
                    .config("spark.driver.bindAddress", config.LOOPBACK)
                    .config("spark.driver.host", config.LOOPBACK)
                    .config("spark.sql.shuffle.partitions", "2")
                    .config("spark.sql.session.timeZone", "UTC")
                    .config("spark.driver.extraJavaOptions", driver_java_options(with_archive=False))
                    .getOrCreate())
        _SESSION.sparkContext.setLogLevel("ERROR")
    return _SESSION


@dataclass(frozen=True)
class Value:
    """One row value of a case file: the text as written (None for NULL) and `file:line`."""

    text: str | None
    where: str


_NULLS = {"null", "Null", "NULL", "~", ""}
_INTEGER = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|Infinity|nan|NaN)")
# What Spark's cast from string to boolean accepts (case-insensitive).
_BOOLEANS = {"true": True, "t": True, "yes": True, "y": True, "1": True,
             "false": False, "f": False, "no": False, "n": False, "0": False}


def load_case_file(path: Path) -> dict:
    """A case file as plain data; each value under `rows:` is a `Value` keeping its text and line.

    YAML is only composed (structure, no type guessing); keys and settings are text."""
    with path.open() as stream:
        node = yaml.compose(stream, Loader=yaml.BaseLoader)
    return _data(node, _relative(path), in_rows=False) if node is not None else {}


def _data(node: yaml.Node, where: str, in_rows: bool) -> Any:
    if isinstance(node, yaml.MappingNode):
        return {key.value: [] if key.value == "rows" and isinstance(value, yaml.ScalarNode) and not value.value
                else _data(value, where, in_rows or key.value == "rows") for key, value in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_data(item, where, in_rows) for item in node.value]
    if not in_rows:
        return node.value
    plain_null = node.style is None and node.value in _NULLS  # a quoted "null" is the string
    return Value(None if plain_null else node.value, f"{where}:{node.start_mark.line + 1}")


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(config.ROOT))
    except ValueError:
        return str(path)


def _convert(value: Any, data_type, column: str) -> Any:
    """A case value as the Python value Spark takes for `data_type`, from its text only."""
    from pyspark.sql import types as T

    if not isinstance(value, Value):  # rows built in Python rather than read from a case file
        value = Value(None if value is None else str(value), "a row given in Python")
    text = value.text
    if text is None:
        return None

    def bad(expected: str) -> ValueError:
        return ValueError(f"{value.where}: {text!r} is not {expected} (column {column} is "
                          f"{data_type.simpleString()})")

    if isinstance(data_type, (T.StringType, T.VarcharType, T.CharType)):
        return text
    if isinstance(data_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        if not _INTEGER.fullmatch(text.strip()):
            raise bad("a whole number")
        return int(text)
    if isinstance(data_type, T.DecimalType):
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            raise bad("a decimal number") from None
        digits = number.as_tuple()
        scale = max(0, -digits.exponent) if number.is_finite() else None
        whole_digits = len(digits.digits) - (scale or 0)
        if scale is None or scale > data_type.scale or whole_digits > data_type.precision - data_type.scale:
            raise bad(f"a decimal with at most {data_type.precision - data_type.scale} digits before the point "
                      f"and {data_type.scale} after")
        return number
    if isinstance(data_type, (T.FloatType, T.DoubleType)):
        if not _FLOAT.fullmatch(text.strip()):
            raise bad("a number")
        return float(text)
    if isinstance(data_type, T.BooleanType):
        if text.strip().lower() not in _BOOLEANS:
            raise bad("a boolean (true or false)")
        return _BOOLEANS[text.strip().lower()]
    try:
        if isinstance(data_type, T.DateType):
            return dt.date.fromisoformat(text.strip())
        if isinstance(data_type, (T.TimestampType, T.TimestampNTZType)):
            return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise bad("an ISO date (2024-01-31)" if isinstance(data_type, T.DateType)
                  else "an ISO timestamp (2024-01-31 12:30:00)") from None
    if isinstance(data_type, T.BinaryType):
        return bytearray(text.encode())
    raise ValueError(f"{value.where}: column {column} is {data_type.simpleString()}, a type case files do not "
                     "support yet (use one of string, int, bigint, decimal, double, boolean, date, timestamp, binary)")


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
        rows.append([_convert(v, f.dataType, f.name) for v, f in zip(values, schema.fields)])
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
        shown = "\n".join(str(r.asDict()) for r in rows[:10])
        assert not rows, f"{where}: expected no rows, got {len(rows)}:\n{shown}"
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
        spec = load_case_file(self.path)
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
