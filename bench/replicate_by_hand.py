"""The baselines of bench/runner.py: replication written by hand in PySpark, as the original
system did it (plain JDBC read, Spark's own overwrite into MySQL, no staging).

    python bench/replicate_by_hand.py TABLE [TABLE ...]      one SparkSession for all tables
    python bench/replicate_by_hand.py --verify TABLE ...     the same, then every copy verified
    spark-submit bench/replicate_by_hand.py TABLE           the original method: one submit per table
--verify does by hand what sql/replicate's check does: it keeps the rows it read, and after the
copies compares their counts and checksums with the copies read back from MySQL, in one Spark
job; a difference fails.
Tables land in MySQL as bench_<table> so the published replica is not touched.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner import config  # noqa: E402
from runner.engine.session import spark_session  # noqa: E402

MICROSECONDS = "yyyy-MM-dd HH:mm:ss.SSSSSS"


def fingerprints(frames: dict[str, object]):
    """(name, rows, checksum) of each frame: each row as JSON text, timestamps to the microsecond,
    hashed and summed; all of them computed in one Spark job."""
    from functools import reduce

    from pyspark.sql import functions as F

    def fingerprint(name, frame):
        text = F.to_json(F.struct(*frame.columns), {"timestampFormat": MICROSECONDS,
                                                     "timestampNTZFormat": MICROSECONDS})
        return frame.select(F.lit(name).alias("name"), F.count("*").alias("rows"),
                            F.coalesce(F.sum(F.xxhash64(text).cast("decimal(38, 0)")), F.lit(0)).alias("checksum"))

    return reduce(lambda a, b: a.unionAll(b), [fingerprint(name, frame) for name, frame in frames.items()])


def main(tables: list[str], verify: bool) -> None:
    spark = spark_session("replicate-by-hand")
    source, target = config.connection("postgresql"), config.connection("mysql")
    written = {}
    for table in tables:
        frame = spark.read.jdbc(source.jdbc_url, table, properties=source.jdbc_properties)
        if verify:
            frame = frame.localCheckpoint()  # one snapshot: what is written is what is compared
        frame.write.option("batchsize", 10000).jdbc(
            target.jdbc_url, f"bench_{table}", mode="overwrite", properties=target.jdbc_properties)
        written[table] = frame
    if verify:
        copies = {f"bench_{table}": spark.read.jdbc(target.jdbc_url, f"bench_{table}",
                                                    properties=target.jdbc_properties)
                  for table in tables}
        found = {name: (rows, checksum) for name, rows, checksum in fingerprints({**written, **copies}).collect()}
        for table in tables:
            if found[table] != found[f"bench_{table}"]:
                sys.exit(f"bench_{table} in MySQL differs from {table} in PostgreSQL: {found}")
    spark.stop()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    main([a for a in arguments if a != "--verify"], verify="--verify" in arguments)
