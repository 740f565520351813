"""The baselines of bench/runner.py: replication written by hand in PySpark, as the original
system did it (plain JDBC read, Spark's own overwrite into MySQL, no staging, no checks).

    python bench/replicate_by_hand.py TABLE [TABLE ...]      one SparkSession for all tables
    spark-submit bench/replicate_by_hand.py TABLE           the original method: one submit per table
Tables land in MySQL as bench_<table> so the published replica is not touched.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner import config  # noqa: E402
from runner.session import spark_session  # noqa: E402


def main(tables: list[str]) -> None:
    spark = spark_session("replicate-by-hand")
    source, target = config.connection("postgresql"), config.connection("mysql")
    for table in tables:
        frame = spark.read.jdbc(source.jdbc_url, table, properties=source.jdbc_properties)
        frame.write.option("batchsize", 10000).jdbc(
            target.jdbc_url, f"bench_{table}", mode="overwrite", properties=target.jdbc_properties)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
