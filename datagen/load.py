"""Load generated tables into PostgreSQL with COPY, each table in its own transaction.

A table that already holds rows is left alone, so reruns insert nothing and a run killed
half-way (whose open transaction the server rolls back) is completed by the next one. The
serial sequences are moved past the explicit ids, so later inserts that take ids from the
sequence (the Kafka stream adds users) never collide with generated rows.

Example (needs PostgreSQL; `db` is a psycopg2 connection):

    fill(db, Sizes(5000, 5000, 500, 10000, 40000), seed=42, progress=Progress())
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from psycopg2 import sql

from datagen.progress import Progress
from datagen.shop import ID_COLUMNS, TABLE_ORDER, Sizes, generate_shop
from datagen.table import Table, copy_binary, copy_text
from runner.errors import one_line

CHILDREN = {
    "product_categories": ("products",),
    "users": ("orders",),
    "products": ("order_details",),
    "orders": ("order_details",),
    "order_details": (),
}
"""Tables whose generated rows depend on a table's generated rows (foreign keys, totals)."""

FINGERPRINT_COLUMNS = {
    "product_categories": "parent_category_id",
    "products": "price",
    "orders": "total_amount",
}
"""The column summed to tell whether a table holds the rows this seed and scale generate."""

COPY_CHUNK = 1 << 20


class LoadError(Exception):
    """The database refused the data, or holds rows this run cannot build on; names the table."""


@dataclass
class Result:
    """What a run did: rows loaded per table, tables left alone, and where the time went."""

    loaded: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    generate_seconds: float = 0.0
    encode_seconds: float = 0.0
    copy_seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(self.loaded.values())


def fill(db, sizes: Sizes, seed: int, progress: Progress) -> Result:
    """Fill the empty tables of the connection's schema with the shop generated from `seed`.

    Args:
        db: a psycopg2 connection whose search_path is the target schema.
        sizes: rows per table.
        seed: the random seed; the same seed and sizes always give the same rows.
        progress: where to report each table.

    Returns:
        A Result; raises LoadError naming the table when a load fails.
    """
    where = _where(db)
    absent = missing_tables(db)
    if absent:
        raise LoadError(f"table(s) {', '.join(absent)} missing from {where}: "
                        "create them with `bash local/initdb.sh postgresql`")
    empty = {name: is_empty(db, name) for name in TABLE_ORDER}
    result = Result()
    if not any(empty.values()):
        for name in TABLE_ORDER:
            progress.skipped(name)
        result.skipped = list(TABLE_ORDER)
        return result

    tables = generate_shop(sizes, seed)
    for name in TABLE_ORDER:
        started = time.perf_counter()
        table = next(tables)
        result.generate_seconds += time.perf_counter() - started
        loaded = empty[name] and load_table(db, table, progress, result, where)
        if loaded:
            continue
        progress.skipped(name)
        result.skipped.append(name)
        dependants = [child for child in CHILDREN[name] if empty[child]]
        if dependants and not holds(db, table):
            raise LoadError(
                f"{name} already holds rows other than the ones --seed {seed} generates at these "
                f"sizes, so {', '.join(dependants)} cannot be built on them: rerun with the seed "
                f"and scale that filled {name}, or empty {name} and the tables that refer to it")
    return result


def load_table(db, table: Table, progress: Progress, result: Result, where: str) -> bool:
    """COPY `table` in one transaction if it is empty; False if it already holds rows.

    The table lock (which also blocks concurrent writers) makes a concurrent run wait and then
    find the rows, instead of loading them twice. As PostgreSQL's manual advises for bulk loads,
    the table's foreign keys and secondary indexes are dropped for the COPY and recreated from
    their catalogue definitions afterwards, in the same transaction: one set-wise validation
    instead of a locking lookup per row, and nothing changes unless the whole table commits.
    """
    name = sql.Identifier(table.name)
    id_column = sql.Identifier(ID_COLUMNS[table.name])
    # Statements go in as few round trips as possible: a small table is mostly latency.
    lock = sql.SQL("lock table {0} in share row exclusive mode; "
                   "select exists (select 1 from {0})").format(name)
    setval = sql.SQL("select setval(pg_get_serial_sequence({}, {}), max({})) from {} "
                     "having max({}) is not null").format(
        sql.Literal(table.name), sql.Literal(ID_COLUMNS[table.name]), id_column, name, id_column)
    try:
        with db.cursor() as cur:
            cur.execute(lock)
            if cur.fetchone()[0]:
                db.rollback()
                return False
            started = time.perf_counter()
            binary = copy_binary(table)
            data = copy_text(table) if binary is None else binary
            encoded = time.perf_counter()
            result.encode_seconds += encoded - started
            advance = progress.start(table.name, len(table), len(data))
            drops, recreations = _foreign_keys_and_indexes(cur, table.name)
            if drops:
                cur.execute("; ".join(drops))
            copy = sql.SQL("copy {} ({}) from stdin{}").format(
                name, sql.SQL(", ").join(map(sql.Identifier, table.column_names)),
                sql.SQL(" with (format binary)" if binary is not None else ""))
            cur.copy_expert(copy, _Reader(data, advance), size=COPY_CHUNK)
            cur.execute("; ".join([*recreations, setval.as_string(cur)]))
        db.commit()
    except Exception as error:
        _rollback(db)
        raise LoadError(f"loading {table.name} into {where} failed: {one_line(error)}") from error
    seconds = time.perf_counter() - encoded
    result.copy_seconds += seconds
    result.loaded[table.name] = len(table)
    progress.done(table.name, len(table), seconds)
    return True


def _foreign_keys_and_indexes(cur, table: str) -> tuple[list[str], list[str]]:
    """Statements that drop `table`'s foreign keys and non-unique indexes, and the statements
    that recreate them exactly as the catalogue defines them (indexes first)."""
    cur.execute("""
        select format('alter table %%s drop constraint %%I', conrelid::regclass, conname),
               format('alter table %%s add constraint %%I %%s', conrelid::regclass, conname,
                      pg_get_constraintdef(oid)),
               2
        from pg_constraint where conrelid = %(table)s::regclass and contype = 'f'
        union all
        select format('drop index %%s', indexrelid::regclass), pg_get_indexdef(indexrelid), 1
        from pg_index where indrelid = %(table)s::regclass and not indisunique and not indisprimary
        order by 3, 1""", {"table": table})
    rows = cur.fetchall()
    return [drop for drop, _, _ in rows], [create for _, create, _ in rows]


def missing_tables(db) -> list[str]:
    """The shop tables absent from the connection's current schema."""
    with db.cursor() as cur:
        cur.execute("select table_name from information_schema.tables "
                    "where table_schema = current_schema()")
        present = {row[0] for row in cur.fetchall()}
    db.rollback()
    return [name for name in TABLE_ORDER if name not in present]


def is_empty(db, table: str) -> bool:
    """True if `table` holds no rows."""
    with db.cursor() as cur:
        cur.execute(sql.SQL("select not exists (select 1 from {})").format(sql.Identifier(table)))
        empty = cur.fetchone()[0]
    db.rollback()
    return empty


def holds(db, table: Table) -> bool:
    """True if the database holds `table`'s generated rows at ids 1..n (by count and a sum)."""
    id_column = ID_COLUMNS[table.name]
    column = FINGERPRINT_COLUMNS.get(table.name)
    total = sql.SQL("coalesce(sum({}), 0)").format(sql.Identifier(column)) if column \
        else sql.SQL("0")
    with db.cursor() as cur:
        cur.execute(sql.SQL("select count(*), {} from {} where {} between 1 and %s").format(
            total, sql.Identifier(table.name), sql.Identifier(id_column)), (len(table),))
        count, stored = cur.fetchone()
    db.rollback()
    expected = 0
    if column:
        kind, values = table.columns[column]
        expected = int(np.where(values < 0, 0, values).sum())
        stored = stored * 100 if kind == "money" else stored
    return count == len(table) and int(stored) == expected


class _Reader:
    """A file-like view of COPY data that reports each chunk psycopg2 reads."""

    def __init__(self, data: bytes, advance: Callable[[int], None]) -> None:
        self._view = memoryview(data)
        self._position = 0
        self._advance = advance

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._position + size
        chunk = self._view[self._position:end].tobytes()
        self._position += len(chunk)
        self._advance(len(chunk))
        return chunk

    def readline(self, size: int = -1) -> bytes:  # part of the file protocol psycopg2 may use
        return self.read(size)


def _where(db) -> str:
    """`schema X at host:port` for messages (the search_path holds the configured schema)."""
    with db.cursor() as cur:
        cur.execute("show search_path")
        schema = cur.fetchone()[0]
    db.rollback()
    return f"schema {schema} at {db.info.host}:{db.info.port}"


def _rollback(db) -> None:
    try:
        db.rollback()
    except Exception:  # the connection is gone: the server has rolled back already
        pass
