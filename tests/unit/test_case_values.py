"""Case files keep their values: a row value reaches Spark as its column's type makes of the
characters written, never as YAML 1.1 guesses it (`no` -> False, `0123` -> 83), and a value its
column cannot hold is an error naming the case file and line. Real YAML files, real Spark."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from tests.sql_cases import frame, load_case_file, local_spark

TRAPS = ["no", "on", "yes", "off", "0123", "010", "1e3", "12:30", "2024-01-01", "0x1F", "~none", "True", ".5"]


def case_file(tmp_path: Path, schema: str, rows: str) -> Path:
    path = tmp_path / "010_case.yml"
    path.write_text(f"cases:\n  - name: c\n    given:\n      t:\n        schema: {schema}\n        rows:\n{rows}")
    return path


def rows_of(path: Path) -> list[tuple]:
    table = load_case_file(path)["cases"][0]["given"]["t"]
    return [tuple(row) for row in frame(local_spark(), table, "case").collect()]


@pytest.mark.parametrize("text", TRAPS)
def test_a_string_column_gets_exactly_the_characters_written(tmp_path: Path, text: str) -> None:
    path = case_file(tmp_path, "s string", f"          - [{text}]\n          - {{s: {text}}}\n")
    assert rows_of(path) == [(text,), (text,)]


def test_null_tilde_and_nothing_are_null_and_quoted_null_is_text(tmp_path: Path) -> None:
    rows = "          - [null, ~]\n          - {n: 1, s: }\n          - ['null', 2]\n          - [\"~\", 3]\n"
    path = case_file(tmp_path, "s string, n int", rows)
    assert rows_of(path) == [(None, None), (None, 1), ("null", 2), ("~", 3)]


def test_typed_columns_are_converted_from_their_text(tmp_path: Path) -> None:
    path = case_file(tmp_path, "i int, b bigint, d decimal(10,2), f double, ok boolean, day date, at timestamp",
                     "          - [0123, 010, 010.50, 1e3, no, 2024-01-31, '2024-01-31 12:30:00']\n")
    assert rows_of(path) == [(123, 10, Decimal("10.50"), 1000.0, False, dt.date(2024, 1, 31),
                              dt.datetime(2024, 1, 31, 12, 30))]


@pytest.mark.parametrize(("schema", "value", "words"), [
    ("n int", "12:30", "'12:30' is not a whole number (column n is int)"),
    ("n bigint", "1e3", "'1e3' is not a whole number"),
    ("n decimal(10,2)", "abc", "'abc' is not a decimal number"),
    ("n decimal(10,2)", "1.234", "at most 8 digits before the point and 2 after"),
    ("n date", "2024-02-30", "is not an ISO date"),
    ("n timestamp", "yesterday", "is not an ISO timestamp"),
    ("n boolean", "maybe", "is not a boolean"),
])
def test_a_value_its_column_cannot_hold_names_the_file_and_line(tmp_path: Path, schema: str, value: str,
                                                                 words: str) -> None:
    path = case_file(tmp_path, schema, "          - [null]\n" f"          - [{value}]\n")
    with pytest.raises(ValueError) as error:
        rows_of(path)
    assert str(error.value).startswith(f"{path}:8: "), error.value
    assert words in str(error.value)
