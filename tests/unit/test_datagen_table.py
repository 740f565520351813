"""Tables encode to PostgreSQL's COPY text format and to DB-API rows exactly."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import numpy as np
import pytest

from datagen.table import BINARY_HEADER, BINARY_TRAILER, Table, copy_binary, copy_text, rows


def table(**columns) -> Table:
    return Table("t", columns)


def test_integers_and_null_ids():
    t = table(id=("int", np.array([1, 2])), parent=("int", np.array([-1, 1])))
    assert copy_text(t) == b"1\t\\N\n2\t1\n"


def test_money_renders_cents_with_two_decimals():
    t = table(price=("money", np.array([0, 5, 1999, 9_999_999_999])))
    assert copy_text(t) == b"0.00\n0.05\n19.99\n99999999.99\n"


def test_money_beyond_numeric_10_2_is_refused():
    with pytest.raises(ValueError, match=r"numeric\(10,2\)"):
        copy_text(table(price=("money", np.array([10**10]))))


def test_timestamps_render_iso_and_nat_as_null():
    moments = np.array(["2025-03-04T05:06:07", "NaT"], dtype="datetime64[s]")
    assert copy_text(table(at=("timestamp", moments))) == b"2025-03-04T05:06:07\n\\N\n"


def test_text_escapes_copy_special_characters():
    names = np.array(["plain", "tab\there", "back\\slash", "new\nline"], dtype=object)
    assert copy_text(table(name=("text", names))) == \
        b"plain\ntab\\there\nback\\\\slash\nnew\\nline\n"


def test_percent_signs_survive_the_row_format():
    assert copy_text(table(name=("text", np.array(["100% cotton %s"], dtype=object)))) == \
        b"100% cotton %s\n"


def test_empty_table_encodes_to_nothing():
    assert copy_text(table(id=("int", np.array([], dtype=np.int64)))) == b""


def test_rows_give_python_values_for_inserts():
    t = table(id=("int", np.array([7, 8])), parent=("int", np.array([-1, 7])),
              price=("money", np.array([1999, 5])),
              at=("timestamp", np.array(["2025-01-02T03:04:05", "NaT"], dtype="datetime64[s]")),
              name=("text", np.array(["a", "b"], dtype=object)))
    assert list(rows(t)) == [
        (7, None, Decimal("19.99"), datetime(2025, 1, 2, 3, 4, 5), "a"),
        (8, 7, Decimal("0.05"), None, "b"),
    ]


def test_binary_rows_hold_int4_and_numeric_fields():
    t = table(id=("int", np.array([1])), price=("money", np.array([1999])))
    row = (b"\x00\x02"                                   # two fields
           b"\x00\x00\x00\x04" b"\x00\x00\x00\x01"        # int4 1
           b"\x00\x00\x00\x0e"                           # numeric, 14 bytes:
           b"\x00\x03\x00\x01\x00\x00\x00\x02"            # 3 digits, weight 1, +, scale 2
           b"\x00\x00\x00\x13\x26\xac")                   # 0000 0019 .9900
    assert copy_binary(t) == BINARY_HEADER + row + BINARY_TRAILER


def test_binary_money_spans_the_whole_numeric_10_2_range():
    data = copy_binary(table(price=("money", np.array([9_999_999_999]))))
    assert data[len(BINARY_HEADER) + 2 + 4 + 8:-2] == b"\x27\x0f\x27\x0f\x26\xac"


@pytest.mark.parametrize("column", [
    ("text", np.array(["a"], dtype=object)),
    ("int", np.array([-1])),                      # a NULL makes the row width vary
    ("timestamp", np.array(["2025-01-01T00:00:00"], dtype="datetime64[s]")),
])
def test_tables_with_other_columns_use_the_text_format(column):
    assert copy_binary(table(id=("int", np.array([1])), other=column)) is None
