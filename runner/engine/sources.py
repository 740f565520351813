"""Source tables as Spark DataFrames: JDBC tables (parallel when a numeric key allows) and Kafka topics.

Illustration (needs a SparkSession and PostgreSQL):
    frame = jdbc_table(spark, config.connection("postgresql"), "orders")
    frame.rdd.getNumPartitions()   # 1 for small tables, more for large ones
"""

from __future__ import annotations

import json
import logging
import math

from runner import config
from runner.targets.names import quote, quote_qualified

log = logging.getLogger("runner")

# Rows per JDBC read partition: below this a table is read through one connection, which is
# faster than several for small tables; above it reads split on the numeric primary key.
ROWS_PER_PARTITION = 100_000
MAX_PARTITIONS = 8

_NUMERIC = {"smallint", "integer", "int", "bigint", "mediumint", "tinyint", "serial", "bigserial"}


def _numeric_key(conn: config.Connection, table: str) -> tuple[str, int, int] | None:
    """(column, min, max) of a single-column numeric primary key of `table`, if it has one."""
    if conn.kind == "postgresql":
        key_sql = """
            select a.attname, format_type(a.atttypid, a.atttypmod)
            from pg_index i
            join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
            where i.indrelid = to_regclass(%s) and i.indisprimary"""
        args = (quote_qualified("postgresql", conn.schema, table),)
    else:
        key_sql = """
            select column_name, data_type from information_schema.key_column_usage k
            join information_schema.columns c using (table_schema, table_name, column_name)
            where k.table_schema = %s and k.table_name = %s and k.constraint_name = 'PRIMARY'"""
        args = (conn.database, table)
    db = conn.connect()
    try:
        with db.cursor() as cursor:
            cursor.execute(key_sql, args)
            keys = cursor.fetchall()
            if len(keys) != 1 or keys[0][1].split("(")[0].lower() not in _NUMERIC:
                return None
            column = keys[0][0]
            quoted = quote(conn.kind, column)
            cursor.execute(f"select min({quoted}), max({quoted}) from {quote(conn.kind, table)}")
            low, high = cursor.fetchone()
    finally:
        db.close()
    return None if low is None else (column, int(low), int(high))


def jdbc_table(spark, conn: config.Connection, table: str):
    """`table` of a database connection as a DataFrame; filters and columns are pushed down."""
    reader = (spark.read.format("jdbc")
              .option("url", conn.jdbc_url)
              .option("dbtable", quote(conn.kind, table))  # an identifier, never SQL text
              .option("fetchsize", 10000)
              .option("pushDownAggregate", "true")
              .option("pushDownLimit", "true"))
    for key, value in conn.jdbc_properties.items():
        reader = reader.option(key, value)
    key = _numeric_key(conn, table)
    if key:
        column, low, high = key
        partitions = min(MAX_PARTITIONS, math.ceil((high - low + 1) / ROWS_PER_PARTITION))
        if partitions > 1:
            reader = (reader.option("partitionColumn", column).option("lowerBound", low)
                      .option("upperBound", high + 1).option("numPartitions", partitions))
            log.info("reading %s.%s in %d parallel ranges of %s", conn.name, table, partitions, column)
    return reader.load()


def kafka_offsets(conn: config.Connection, topic: str, stored: dict[int, int]) -> tuple[dict[int, int], dict[int, int]]:
    """(start, end) offset per partition: start where the last published run stopped, end at the log's end now."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaTimeoutError

    try:
        consumer = KafkaConsumer(bootstrap_servers=conn.servers, enable_auto_commit=False,
                                 request_timeout_ms=15000)
    except KafkaTimeoutError:
        raise ConnectionError(f"cannot reach Kafka at {conn.servers}: no broker answered") from None
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise LookupError(f"Kafka topic {topic!r} does not exist on {conn.servers}")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        beginning = consumer.beginning_offsets(assigned)
        end = consumer.end_offsets(assigned)
    finally:
        consumer.close()
    start = {}
    for tp in assigned:
        first = beginning[tp]
        start[tp.partition] = max(stored.get(tp.partition, first), first)
        if stored.get(tp.partition, first) < first:
            log.warning("%s[%d]: offsets %d..%d were deleted by retention before they were read",
                        topic, tp.partition, stored[tp.partition], first - 1)
    return start, {tp.partition: end[tp] for tp in assigned}


def kafka_topic(spark, conn: config.Connection, topic: str, start: dict[int, int], end: dict[int, int]):
    """The records of `topic` between two offset maps: key, value, topic, partition, offset, timestamp, ..."""
    return (spark.read.format("kafka")
            .option("kafka.bootstrap.servers", conn.servers)
            .option("assign", json.dumps({topic: sorted(start)}))
            .option("startingOffsets", json.dumps({topic: {str(p): o for p, o in start.items()}}))
            .option("endingOffsets", json.dumps({topic: {str(p): o for p, o in end.items()}}))
            .load())
