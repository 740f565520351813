"""Row count and order-independent checksum of a table, computed inside its own database.

A copy is verified by comparing the fingerprint of the source table (in PostgreSQL, say) with
that of the staged copy (in MySQL): only two numbers per side cross the wire, however large the
table. Both databases render each row as the same canonical text and hash it the same way:

- every column is rendered by the type of the copy's column, not the source's: integers as
  digits, decimals with exactly the copy's scale, timestamps and dates to the microsecond
  (`2024-01-15 09:30:00.123456`, in UTC), booleans as 1 or 0;
- a string is prefixed with its length in characters (`3:Ann`), so no value can imitate a
  separator; NULL is `N`, which no rendered value equals (an empty string is `0:`);
- the fields are joined with `|`; the row's checksum is the first 15 hex digits of the MD5 of
  its UTF-8 text as a 60-bit integer, and the table's checksum their sum (exact: a decimal).

Example:
    >>> print(fingerprint_sql("postgresql", "users", [("user_id", "int", 0), ("email", "string", 0)]))
    select count(*), coalesce(sum(('x' || substr(md5(concat_ws('|', coalesce("user_id"::text, 'N'),
        coalesce(length("email") || ':' || "email", 'N'))), 1, 15))::bit(60)::bigint), 0) from "users"
"""

from __future__ import annotations

from pyspark.sql import types as T

from runner.targets.ddl import quote

Column = tuple[str, str, int]  # (name, kind: int | decimal | string | timestamp | date | boolean, scale)

_INTEGERS = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)


def columns_of(schema: T.StructType) -> list[Column]:
    """The columns of a result as the fingerprint renders them; a type it cannot render the same
    way in both databases (floating point, binary, nested) raises TypeError naming the column."""
    columns = []
    for field in schema.fields:
        data_type = field.dataType
        if isinstance(data_type, _INTEGERS):
            columns.append((field.name, "int", 0))
        elif isinstance(data_type, T.DecimalType):
            columns.append((field.name, "decimal", data_type.scale))
        elif isinstance(data_type, (T.StringType, T.VarcharType, T.CharType)):
            columns.append((field.name, "string", 0))
        elif isinstance(data_type, (T.TimestampType, T.TimestampNTZType)):
            columns.append((field.name, "timestamp", 0))
        elif isinstance(data_type, T.DateType):
            columns.append((field.name, "date", 0))
        elif isinstance(data_type, T.BooleanType):
            columns.append((field.name, "boolean", 0))
        else:
            raise TypeError(f"column {field.name!r} ({data_type.simpleString()}) cannot be verified by checksum: "
                            "its text differs between databases; cast it to decimal(p, s) or string")
    return columns


def _rendered(dialect: str, column: Column) -> str:
    """The canonical text of one column (NULL stays NULL)."""
    name, kind, scale = column
    q = quote(dialect, name)
    if dialect == "postgresql":
        return {
            "int": f"{q}::text",
            "decimal": f"{q}::numeric(38, {scale})::text",
            "string": f"length({q}) || ':' || {q}",
            "timestamp": f"to_char({q}, 'YYYY-MM-DD HH24:MI:SS.US')",
            "date": f"to_char({q}, 'YYYY-MM-DD')",
            "boolean": f"{q}::int::text",
        }[kind]
    return {
        "int": f"cast({q} as char)",
        "decimal": f"cast(cast({q} as decimal(38, {scale})) as char)",
        "string": f"concat(char_length({q}), ':', {q})",
        "timestamp": f"date_format({q}, '%Y-%m-%d %H:%i:%s.%f')",
        "date": f"date_format({q}, '%Y-%m-%d')",
        "boolean": f"cast(cast({q} as signed) as char)",
    }[kind]


def fingerprint_sql(dialect: str, table: str, columns: list[Column], where: str = "") -> str:
    """The query returning (row count, checksum) of `table` in `dialect` (postgresql or mysql),
    of the rows `where` selects (all of them by default)."""
    text = "concat_ws('|', " + ", ".join(f"coalesce({_rendered(dialect, c)}, 'N')" for c in columns) + ")"
    if dialect == "postgresql":
        row_hash = f"('x' || substr(md5({text}), 1, 15))::bit(60)::bigint"
    else:
        row_hash = f"cast(conv(substr(md5({text}), 1, 15), 16, 10) as unsigned)"
    return f"select count(*), coalesce(sum({row_hash}), 0) from {quote(dialect, table)}" + (
        f" where {where}" if where else "")


def key_ranges(dialect: str, key: str, low: int, high: int, parts: int) -> list[str]:
    """`parts` conditions on the integer column `key` that together select every row once:
    ranges of [low, high], the first open below, the last open above and taking NULL too.

    >>> key_ranges("mysql", "id", 1, 100, 2)
    ['`id` < 51', '`id` >= 51 or `id` is null']
    """
    q = quote(dialect, key)
    bounds = sorted({low + (high - low + 1) * i // parts for i in range(1, parts)} - {low})
    if not bounds:
        return [""]
    conditions = [f"{q} < {bounds[0]}"]
    conditions += [f"{q} >= {a} and {q} < {b}" for a, b in zip(bounds, bounds[1:])]
    return conditions + [f"{q} >= {bounds[-1]} or {q} is null"]


def fingerprint(connection, dialect: str, table: str, columns: list[Column], where: str = "") -> tuple[int, int]:
    """(row count, checksum) of `table` (of its rows `where` selects) on an open DB-API
    connection whose session is in UTC. Both are sums over rows: the fingerprints of disjoint
    parts of a table add up to the table's."""
    with connection.cursor() as cursor:
        cursor.execute(fingerprint_sql(dialect, table, columns, where))
        rows, checksum = cursor.fetchone()
    return int(rows), int(checksum)


def key_bounds(connection, dialect: str, table: str, key: str) -> tuple[int, int] | None:
    """(min, max) of the integer column `key` of `table`, None when the table is empty."""
    with connection.cursor() as cursor:
        cursor.execute(f"select min({quote(dialect, key)}), max({quote(dialect, key)}) from {quote(dialect, table)}")
        low, high = cursor.fetchone()
    return None if low is None else (int(low), int(high))


def utc_connection(connection):
    """A DB-API connection to `connection` whose session renders timestamps in UTC."""
    db = connection.connect()
    with db.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'" if connection.kind == "postgresql" else "SET time_zone = '+00:00'")
    return db
