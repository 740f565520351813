"""A generated table held column-wise in numpy arrays, and its encodings for COPY.

Columns stay numpy arrays until they are loaded, so generation and consistency checks are
vectorised; `copy_binary` lays out tables of fixed-width columns in COPY's binary format,
`copy_text` turns any table into COPY's text format in one pass, and `rows` yields plain
Python rows for a row-by-row `INSERT` (the benchmark's baseline).

Example:
    >>> import numpy as np
    >>> t = Table("t", {"id": ("int", np.array([1, 2])), "price": ("money", np.array([1999, 5])),
    ...                 "parent": ("int", np.array([-1, 1]))})
    >>> copy_text(t)
    b'1\\t19.99\\t\\\\N\\n2\\t0.05\\t1\\n'
    >>> list(rows(t))
    [(1, Decimal('19.99'), None), (2, Decimal('0.05'), 1)]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

import numpy as np

Kind = Literal["int", "money", "timestamp", "text"]
"""Column kinds: `int` (int64, -1 = NULL), `money` (int64 cents -> numeric(10,2)),
`timestamp` (datetime64[s], NaT = NULL), `text` (object array of str)."""

NULL = "\\N"
MONEY_LIMIT_CENTS = 10**10
"""numeric(10,2) holds values below 10**8 dollars, i.e. 10**10 cents."""

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True)
class Table:
    """One table's rows: `columns` maps a column name to its (kind, values) in column order."""

    name: str
    columns: dict[str, tuple[Kind, np.ndarray]]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))[1])

    def __getitem__(self, column: str) -> np.ndarray:
        return self.columns[column][1]

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)


def copy_text(table: Table) -> bytes:
    """The table in PostgreSQL's COPY text format (tab-separated, `\\N` for NULL), one row a line."""
    if len(table) == 0:
        return b""
    # One %-format per row over plain Python lists is about twice as fast as joining per-cell
    # strings: integers and cents stay integers until the format's C code renders them.
    pieces: list[str] = []
    values: list[list] = []
    for kind, column in table.columns.values():
        piece, lists = _encode(kind, column)
        pieces.append(piece)
        values.extend(lists)
    line = "\t".join(pieces)
    return ("\n".join(map(line.__mod__, zip(*values))) + "\n").encode()


BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
BINARY_TRAILER = b"\xff\xff"


def copy_binary(table: Table) -> bytes | None:
    """The table in COPY's binary format if every column is a non-null `int` (integer) or
    `money`; None otherwise (then `copy_text` applies).

    Such rows have a fixed width, so numpy lays them all out at once as big-endian 16-bit
    words: no per-row Python, and PostgreSQL parses binary faster than text. Money goes as a
    numeric of three base-10000 digits (weight 1, scale 2), which PostgreSQL normalises.
    """
    columns: list[np.ndarray | int] = [len(table.columns)]  # each row starts with its field count
    for kind, values in table.columns.values():
        if kind == "int" and not (values < 0).any():
            columns += [0, 4, values >> 16, values & 0xFFFF]  # length 4, then the int32
        elif kind == "money":
            _check_money(values)
            dollars, cents = np.divmod(values, 100)
            # length 14; ndigits 3, weight 1, sign +, dscale 2; the three digits
            columns += [0, 14, 3, 1, 0, 2, dollars // 10000, dollars % 10000, cents * 100]
        else:
            return None
    # Filled column by column (contiguous writes), then turned into rows of big-endian words.
    words = np.empty((len(columns), len(table)), dtype=np.uint16)
    for i, column in enumerate(columns):
        words[i] = column
    return BINARY_HEADER + words.T.astype(">u2").tobytes() + BINARY_TRAILER


def rows(table: Table) -> Iterator[tuple]:
    """The table's rows as Python values (int, Decimal, datetime, str, None), for DB-API inserts."""
    decoded = [_decode(kind, values) for kind, values in table.columns.values()]
    return zip(*decoded)


def _encode(kind: Kind, values: np.ndarray) -> tuple[str, list[list]]:
    """A column as (%-format piece, value lists the piece consumes)."""
    if kind == "int":
        if (values < 0).any():
            return "%s", [[NULL if v < 0 else str(v) for v in values.tolist()]]
        return "%d", [values.tolist()]
    if kind == "money":
        _check_money(values)
        dollars, cents = np.divmod(values, 100)
        return "%d.%02d", [dollars.tolist(), cents.tolist()]
    if kind == "timestamp":
        out = np.datetime_as_string(values.astype("datetime64[s]"), unit="s").tolist()
        if np.isnat(values).any():
            out = [NULL if s == "NaT" else s for s in out]
        return "%s", [out]
    if kind == "text":
        out = values.tolist()
        # Values come from pools and templates; escape only if one holds a COPY special character.
        joined = "".join(out)
        if any(special in joined for special in "\\\t\n\r"):
            out = [s.translate(_ESCAPES) for s in out]
        return "%s", [out]
    raise ValueError(f"unknown column kind {kind!r}")


def _decode(kind: Kind, values: np.ndarray) -> list:
    if kind == "int":
        return [None if v < 0 else v for v in values.tolist()]
    if kind == "money":
        _check_money(values)
        return [Decimal(v).scaleb(-2) for v in values.tolist()]
    if kind == "timestamp":
        return [None if np.isnat(v) else v.astype("datetime64[s]").astype(datetime)
                for v in values]
    return values.tolist()


def _check_money(values: np.ndarray) -> None:
    if len(values) and (values.min() < 0 or values.max() >= MONEY_LIMIT_CENTS):
        raise ValueError(f"amount {values.max() / 100:.2f} does not fit numeric(10,2)")
