"""The baselines of bench/runner.py: replication written by hand in PySpark, as the original
system did it (plain JDBC read, Spark's own overwrite into MySQL, no staging).

    python bench/replicate_by_hand.py TABLE [TABLE ...]      one SparkSession for all tables
    python bench/replicate_by_hand.py --verify TABLE ...     the same, each copy then verified
    spark-submit bench/replicate_by_hand.py TABLE           the original method: one submit per table
--verify does by hand what sql/replicate's check does: it keeps the rows it read, and after the
copy compares their count and checksum with the copy read back from MySQL; a difference fails.
Tables land in MySQL as bench_<table> so the published replica is not touched.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner import config  # noqa: E402
from runner.session import spark_session  # noqa: E402

MICROSECONDS = "yyyy-MM-dd HH:mm:ss.SSSSSS"


def fingerprint(frame) -> tuple[int, int]:
    """(rows, checksum): each row as JSON text, timestamps to the microsecond, hashed and summed."""
    from pyspark.sql import functions as F

    text = F.to_json(F.struct(*frame.columns), {"timestampFormat": MICROSECONDS, "timestampNTZFormat": MICROSECONDS})
    rows, checksum = frame.select(F.count("*"), F.sum(F.xxhash64(text).cast("decimal(38, 0)"))).first()
    return rows, checksum or 0


def main(tables: list[str], verify: bool) -> None:
    spark = spark_session("replicate-by-hand")
    source, target = config.connection("postgresql"), config.connection("mysql")
    for table in tables:
        frame = spark.read.jdbc(source.jdbc_url, table, properties=source.jdbc_properties)
        if verify:
            frame = frame.localCheckpoint()  # one snapshot: what is written is what is compared
        frame.write.option("batchsize", 10000).jdbc(
            target.jdbc_url, f"bench_{table}", mode="overwrite", properties=target.jdbc_properties)
        if verify:
            copy = spark.read.jdbc(target.jdbc_url, f"bench_{table}", properties=target.jdbc_properties)
            if fingerprint(frame) != fingerprint(copy):
                sys.exit(f"bench_{table} in MySQL differs from {table} in PostgreSQL")
    spark.stop()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    main([a for a in arguments if a != "--verify"], verify="--verify" in arguments)
