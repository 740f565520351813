"""Deliberate column types for published tables: Spark schema -> MySQL or PostgreSQL DDL.

Keys stay keys (NOT NULL, PRIMARY KEY), decimals keep their precision and scale, strings are
sized VARCHAR (from `cast(x as varchar(n))` or the source column), timestamps stay timestamps.

Example:
    >>> from pyspark.sql.types import StructType, StructField, IntegerType, DecimalType
    >>> schema = StructType([StructField("id", IntegerType()), StructField("price", DecimalType(10, 2))])
    >>> create_table("mysql", "t", schema, keys=("id",))
    'CREATE TABLE `t` (`id` INT NOT NULL, `price` DECIMAL(10,2), PRIMARY KEY (`id`))
        ENGINE=InnoDB DEFAULT CHARSET=utf8mb4'
"""

from __future__ import annotations

import re

from pyspark.sql import types as T

from runner.targets.names import quote

# A string column with no declared size; a longer value fails the load instead of being cut.
DEFAULT_VARCHAR = 255
# Above this many characters MySQL needs a TEXT type (a row holds at most 65,535 bytes).
MYSQL_MAX_VARCHAR = 16383

_DECLARED = re.compile(r"^(var)?char\((\d+)\)$", re.IGNORECASE)


def string_size(field: T.StructField) -> int | None:
    """The size a string column inherits from its source's VARCHAR(n), if any."""
    if isinstance(field.dataType, (T.VarcharType, T.CharType)):
        return field.dataType.length
    declared = _DECLARED.match(field.metadata.get("__CHAR_VARCHAR_TYPE_STRING", "") or "")
    return int(declared.group(2)) if declared else None


def column_type(dialect: str, field: T.StructField, size: int | None = None) -> str:
    """The SQL type of one column in `dialect` (mysql or postgresql); `size` for strings."""
    data_type = field.dataType
    mysql = dialect == "mysql"
    if isinstance(data_type, (T.StringType, T.VarcharType, T.CharType)):
        size = size or string_size(field) or DEFAULT_VARCHAR
        if mysql and size > MYSQL_MAX_VARCHAR:
            return "MEDIUMTEXT" if size <= 16_777_215 else "LONGTEXT"
        return f"VARCHAR({size})"
    if isinstance(data_type, T.DecimalType):
        return f"DECIMAL({data_type.precision},{data_type.scale})"
    if isinstance(data_type, (T.TimestampType, T.TimestampNTZType)):
        # MySQL's TIMESTAMP holds only 1970-2038 and shifts by the session's time zone;
        # DATETIME(6) holds the years 1000-9999 as written, like PostgreSQL's timestamp.
        return "DATETIME(6)" if mysql else "TIMESTAMP"
    simple = {
        T.IntegerType: "INT" if mysql else "INTEGER",
        T.LongType: "BIGINT",
        T.ShortType: "SMALLINT",
        T.ByteType: "TINYINT" if mysql else "SMALLINT",
        T.BooleanType: "BOOLEAN",
        T.DoubleType: "DOUBLE" if mysql else "DOUBLE PRECISION",
        T.FloatType: "FLOAT" if mysql else "REAL",
        T.DateType: "DATE",
        T.BinaryType: "LONGBLOB" if mysql else "BYTEA",
    }
    for spark_type, sql_type in simple.items():
        if isinstance(data_type, spark_type):
            return sql_type
    raise TypeError(f"column {field.name!r} has type {data_type.simpleString()}, which cannot be published; "
                    "cast it to a scalar type in the SQL")


def create_table(dialect: str, name: str, schema: T.StructType, keys: tuple[str, ...] = (),
                 sizes: dict[str, int] | None = None) -> str:
    """CREATE TABLE for a result with `schema`, its primary key on `keys`, strings sized by `sizes`."""
    missing = [k for k in keys if k not in schema.names]
    if missing:
        raise KeyError(f"keys {', '.join(missing)} are not columns of the result ({', '.join(schema.names)})")
    columns = []
    for field in schema.fields:
        not_null = " NOT NULL" if field.name in keys or not field.nullable else ""
        sql_type = column_type(dialect, field, (sizes or {}).get(field.name))
        columns.append(f"{quote(dialect, field.name)} {sql_type}{not_null}")
    if keys:
        columns.append(f"PRIMARY KEY ({', '.join(quote(dialect, k) for k in keys)})")
    suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" if dialect == "mysql" else ""
    return f"CREATE TABLE {quote(dialect, name)} ({', '.join(columns)}){suffix}"
