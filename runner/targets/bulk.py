"""Bulk loading of staging tables: Spark writes the rows as text files, the database loads them.

Spark's JDBC writer sends batched INSERTs; the databases' own bulk loaders (MySQL's
`LOAD DATA LOCAL INFILE`, PostgreSQL's `COPY ... FROM STDIN`) take the same rows several times
faster. Both read one text format, which is what `lines` renders in Spark:

- fields separated by a tab, rows ended by a newline, UTF-8;
- NULL as `\\N`; in strings a backslash, tab, newline and carriage return escaped as `\\\\`,
  `\\t`, `\\n`, `\\r` (the default of LOAD DATA and of COPY's text format alike);
- timestamps as `2024-01-15 09:30:00.123456` (the session's UTC), booleans as 1 or 0, numbers
  as Spark prints them.

The files are written by Spark's executors and read by the driver, so this path needs the two
on one machine (a `local[*]` or loopback master); elsewhere, or for a column the format cannot
carry (binary, nested), the staging table is loaded through JDBC as before.

Example:
    >>> from pyspark.sql import types as T
    >>> renderable(T.StructType([T.StructField("id", T.IntegerType()), T.StructField("b", T.BinaryType())]))
    False
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pyspark.sql import functions as F
from pyspark.sql import types as T

from runner import config
from runner.engine.session import on_loopback

# Files loaded at once: each load keeps one database thread busy, and there are two cores.
PARALLEL_LOADS = 2
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))  # backslash first
_SCALAR = (T.StringType, T.VarcharType, T.CharType, T.ByteType, T.ShortType, T.IntegerType, T.LongType,
           T.DecimalType, T.FloatType, T.DoubleType, T.BooleanType, T.DateType, T.TimestampType,
           T.TimestampNTZType)


def renderable(schema: T.StructType) -> bool:
    """Whether every column of `schema` can travel in the text format."""
    return all(isinstance(field.dataType, _SCALAR) for field in schema.fields)


def enabled(spark, schema: T.StructType) -> bool:
    """Bulk-load this frame? Needs executors on the driver's machine and renderable columns;
    RUNNER_BULK_LOAD=off forces the JDBC writer (for comparison, or a remote cluster)."""
    wanted = config.env("RUNNER_BULK_LOAD", "on").lower() not in ("off", "0", "false", "no")
    return wanted and on_loopback(spark.sparkContext.master) and renderable(schema)


def _field(field: T.StructField):
    column = F.col(f"`{field.name}`")
    if isinstance(field.dataType, (T.TimestampType, T.TimestampNTZType)):
        text = F.date_format(column, "yyyy-MM-dd HH:mm:ss.SSSSSS")
    elif isinstance(field.dataType, T.BooleanType):
        text = column.cast("int").cast("string")
    else:
        text = column.cast("string")
    if isinstance(field.dataType, (T.StringType, T.VarcharType, T.CharType)):
        for raw, escaped in _ESCAPES:
            text = F.replace(text, F.lit(raw), F.lit(escaped))
    return F.coalesce(text, F.lit("\\N"))


def lines(dataframe):
    """The frame as one text column `value`, a row per line in the bulk format."""
    return dataframe.select(F.concat_ws("\t", *map(_field, dataframe.schema.fields)).alias("value"))


class Export:
    """A temporary directory of text files holding a frame's rows; removed on exit.

        with Export(frame) as files:
            for path in files: ...
    """

    def __init__(self, dataframe):
        self.dataframe = dataframe
        self.directory: Path | None = None

    def __enter__(self) -> list[Path]:
        self.directory = Path(tempfile.mkdtemp(prefix="runner-load-"))
        out = self.directory / "rows"
        lines(self.dataframe).write.text(out.as_uri())
        return sorted(p for p in out.glob("part-*") if p.stat().st_size)

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
