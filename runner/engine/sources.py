"""Source tables as Spark DataFrames: JDBC tables (parallel when a numeric key allows) and Kafka topics.

Illustration (needs a SparkSession and PostgreSQL):
    frame = jdbc_table(spark, config.connection("postgresql"), "orders")
    frame.rdd.getNumPartitions()   # 1 for small tables, more for large ones
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Self

from runner import config
from runner.targets.names import quote, quote_qualified

log = logging.getLogger("runner")

# Rows per JDBC read partition: below this a table is read through one connection, which is
# faster than several for small tables; above it reads split on the numeric primary key.
ROWS_PER_PARTITION = 100_000
MAX_PARTITIONS = 8

_NUMERIC = {"smallint", "integer", "int", "bigint", "mediumint", "tinyint", "serial", "bigserial"}


class Snapshot:
    """One consistent view of a PostgreSQL database for a whole run.

    A transaction held open for the run exports its snapshot; every JDBC read (each of its
    parallel ranges) and every later verification query imports it, so they all see the same
    rows, whatever the stream commits meanwhile. Example (needs the database):

        with Snapshot(config.connection("postgresql")) as snapshot:
            frame = jdbc_table(spark, snapshot.connection, "users", snapshot)
            db = snapshot.connect()   # psycopg2, in the same snapshot
    """

    def __init__(self, connection: config.Connection):
        self.connection = connection
        self._holder = None
        self.id = ""

    def __enter__(self) -> Self:
        self._holder = self.connection.connect()
        self._holder.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with self._holder.cursor() as cursor:
            cursor.execute("select pg_export_snapshot()")
            self.id = cursor.fetchone()[0]
        return self

    def __exit__(self, *exc) -> None:
        self._holder.close()

    @property
    def session_init(self) -> str:
        """What a JDBC session runs first (Spark's PostgreSQL reader is inside a transaction then)."""
        return ("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; "
                f"SET TRANSACTION SNAPSHOT '{self.id}'")

    def connect(self):
        """A new psycopg2 connection in the snapshot (its session in UTC); the caller closes it."""
        db = self.connection.connect()
        db.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with db.cursor() as cursor:
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{self.id}'")
            cursor.execute("SET TIME ZONE 'UTC'")
        return db


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


def table_bytes(conn: config.Connection, tables: list[str]) -> dict[str, int]:
    """The size on disk of each of `tables` as its database's catalog states it (0 if unknown):
    a cheap measure of how long reading one takes, next to another."""
    if not tables:
        return {}
    if conn.kind == "postgresql":
        sql = "select %s, coalesce(pg_total_relation_size(to_regclass(%s)), 0)"
        args = [(table, quote_qualified("postgresql", conn.schema, table)) for table in tables]
    else:
        sql = ("select %s, coalesce(sum(data_length + index_length), 0) from information_schema.tables "
               "where table_schema = %s and table_name = %s")
        args = [(table, conn.database, table) for table in tables]
    db = conn.connect()
    try:
        with db.cursor() as cursor:
            sizes = {}
            for row in args:
                cursor.execute(sql, row)
                name, size = cursor.fetchone()
                sizes[name] = int(size or 0)
    finally:
        db.close()
    return sizes


def jdbc_table(spark, conn: config.Connection, table: str, snapshot: Snapshot | None = None):
    """`table` of a database connection as a DataFrame; filters and columns are pushed down.
    With a `snapshot`, every parallel range reads the database as the snapshot sees it."""
    reader = (spark.read.format("jdbc")
              .option("url", conn.jdbc_url)
              .option("dbtable", quote(conn.kind, table))  # an identifier, never SQL text
              .option("fetchsize", 10000))
    for key, value in conn.jdbc_properties.items():
        reader = reader.option(key, value)
    if conn.kind == "mysql":
        # Connector/J otherwise buffers each partition's whole result (500,000 rows at x100) in
        # the JVM before Spark sees a row, and the collector spends seconds on it; a server-side
        # cursor hands it over `fetchsize` rows at a time (the same values: binary protocol).
        reader = reader.option("useCursorFetch", "true")
    if snapshot:
        reader = reader.option("sessionInitStatement", snapshot.session_init)
    key = _numeric_key(conn, table)
    if key:
        column, low, high = key
        partitions = min(MAX_PARTITIONS, math.ceil((high - low + 1) / ROWS_PER_PARTITION))
        if partitions > 1:
            reader = (reader.option("partitionColumn", column).option("lowerBound", low)
                      .option("upperBound", high + 1).option("numPartitions", partitions))
            log.info("reading %s.%s in %d parallel ranges of %s", conn.name, table, partitions, column)
    return reader.load()


@dataclass(frozen=True)
class Gap:
    """Offsets of a partition that were never read and never will be: Kafka lost them."""

    partition: int
    first_offset: int
    last_offset: int
    reason: str


@dataclass(frozen=True)
class KafkaBatch:
    """What one run reads of a topic: offsets [start, end) per partition of one incarnation."""

    topic: str
    topic_id: str  # Kafka's id of this incarnation of the topic (a deleted and recreated one has another)
    start: dict[int, int]
    end: dict[int, int]
    # The leader epoch each end offset was read in, stored with it: the next run asks the broker
    # where that epoch ended, which tells a log that lost its tail and grew again from one that grew.
    epochs: dict[int, int | None]
    gaps: list[Gap]
    backlog: int  # committed records left after this batch, for the next run

    @property
    def size(self) -> int:
        return sum(self.end[p] - self.start[p] for p in self.end)


# Every Kafka request is bounded: a broker that does not answer fails the run (exit 3) in seconds.
KAFKA_TIMEOUT_MS = 15_000


def kafka_batch(conn: config.Connection, topic: str, stored: dict[int, tuple[str | None, int, int | None]],
                limit: int) -> KafkaBatch:
    """The next batch of `topic` after the `stored` positions ({partition: (topic id, next
    offset, leader epoch)}), at most `limit` offsets in all, ending at the last stable offset
    (read_committed: never past an open transaction). A position of another incarnation restarts
    at the log's start; offsets Kafka lost are a `Gap`, and reading goes on where the log goes on.

    Example (needs Kafka):
        >>> kafka_batch(config.connection("kafka"), "new_users_events", {}, 100_000).end
        {0: 120, 1: 131, 2: 117}
    """
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.admin import OffsetSpec
    from kafka.errors import KafkaConnectionError, RetriableError
    from kafka.protocol.consumer.offsets import IsolationLevel

    try:
        admin = KafkaAdminClient(bootstrap_servers=conn.servers, client_id="runner",
                                 request_timeout_ms=KAFKA_TIMEOUT_MS, bootstrap_timeout_ms=KAFKA_TIMEOUT_MS)
    except (KafkaConnectionError, RetriableError) as error:  # refused, timed out, no broker
        raise ConnectionError(f"cannot reach Kafka at {conn.servers}: {type(error).__name__}") from None
    try:
        described = admin.describe_topics([topic])[0]
        if described.get("error_code") or not described.get("partitions"):
            raise LookupError(f"Kafka topic {topic!r} does not exist on {conn.servers}")
        if described.get("topic_id") in (None, "", "00000000-0000-0000-0000-000000000000"):
            # Being created: without its id, a position could not name the incarnation it belongs to.
            raise ConnectionError(f"Kafka topic {topic!r} on {conn.servers} has no topic id yet (just created?)")
        topic_id = str(described["topic_id"])
        partitions = {p["partition_index"]: p for p in described["partitions"]}
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]

        def offsets(spec, isolation=IsolationLevel.READ_UNCOMMITTED):
            found = admin.list_partition_offsets({tp: spec for tp in assigned}, isolation_level=isolation,
                                                 timeout_ms=KAFKA_TIMEOUT_MS)
            return {tp.partition: found[tp] for tp in assigned}

        first = {p: found.offset for p, found in offsets(OffsetSpec.EARLIEST).items()}
        latest = offsets(OffsetSpec.LATEST, IsolationLevel.READ_COMMITTED)
        stable = {p: found.offset for p, found in latest.items()}  # the last stable offset
        # Where the epoch of each position ended, asked only when the partition has had a new
        # leader since (one leader never loses offsets it has acknowledged).
        to_check = {p: (offset, epoch) for p, (stored_id, offset, epoch) in stored.items()
                    if p in partitions and stored_id == topic_id and epoch is not None
                    and epoch != partitions[p]["leader_epoch"]}
        epoch_ends = _epoch_ends(admin, topic, partitions, to_check) if to_check else {}
    except (KafkaConnectionError, RetriableError) as error:
        raise ConnectionError(f"cannot reach Kafka at {conn.servers}: {type(error).__name__}: {error}") from None
    finally:
        admin.close()

    start, gaps = {}, []
    for partition in first:
        stored_id, next_offset, _ = stored.get(partition, (None, None, None))
        if next_offset is None:
            start[partition] = first[partition]  # a new consumer reads the topic from its start
            continue
        if stored_id and stored_id != topic_id:
            log.warning("%s[%d]: the topic was deleted and recreated (id %s, was %s): reading the new "
                        "topic from its start", topic, partition, topic_id, stored_id)
            next_offset = 0
        # Where the log the position was read from ends now: where its epoch ended if the broker
        # knows, else at most the log's end.
        diverged = min(epoch_ends.get(partition, stable[partition]), stable[partition])
        if next_offset < first[partition]:
            gaps.append(Gap(partition, next_offset, first[partition] - 1,
                            "below the log start: deleted (retention or delete-records) before it was read"))
            next_offset = first[partition]
        elif next_offset > diverged:
            # The broker lost its tail (e.g. an unclean leader election): offsets from `diverged`
            # on were read once and are gone; new events are written there, so reading goes on
            # from there and skips none of them, however far the log has grown again since.
            gaps.append(Gap(partition, diverged, next_offset - 1,
                            "lost from the log's tail: the broker lost offsets already read (a new leader "
                            "without them); new events reuse them and are read from where the log diverged"))
            next_offset = diverged
        start[partition] = next_offset
    for gap in gaps:
        log.warning("%s[%d]: offsets %d..%d lost, %s; recorded in the gaps table", topic, gap.partition,
                    gap.first_offset, gap.last_offset, gap.reason)
    end = _bounded(start, stable, limit)
    epochs = {p: found.leader_epoch for p, found in latest.items()}
    return KafkaBatch(topic, topic_id, start, end, epochs, gaps, sum(stable[p] - end[p] for p in end))


def _epoch_ends(admin, topic: str, partitions: dict[int, dict],
                positions: dict[int, tuple[int, int]]) -> dict[int, int]:
    """{partition: the offset where the leader's log leaves the epoch of a position} (Kafka's
    OffsetForLeaderEpoch, as its own consumers validate a position after a leader change);
    a partition the leader knows no such epoch for is left out."""
    from kafka.errors import for_code
    from kafka.protocol.consumer.offsets import OffsetForLeaderEpochRequest

    request_partition = OffsetForLeaderEpochRequest.OffsetForLeaderTopic.OffsetForLeaderPartition
    by_leader: dict[int, list] = {}
    for partition, (_, epoch) in positions.items():
        by_leader.setdefault(partitions[partition]["leader_id"], []).append(request_partition(
            partition=partition, current_leader_epoch=partitions[partition]["leader_epoch"], leader_epoch=epoch))
    ends = {}
    for leader, asked in by_leader.items():
        request = OffsetForLeaderEpochRequest(replica_id=-1, topics=[(topic, asked)])

        async def ask(request=request, leader=leader):
            # kafka-python's admin has no public call for it; its consumer sends the same request.
            return await admin._manager.send(request, node_id=leader)

        response = admin._manager.run(ask)
        for answered in response.topics:
            for found in answered.partitions:
                if found.error_code:
                    raise for_code(found.error_code)(f"OffsetForLeaderEpoch {topic}[{found.partition}]")
                if found.end_offset >= 0 and found.leader_epoch >= 0:
                    ends[found.partition] = found.end_offset
    return ends


def _bounded(start: dict[int, int], stable: dict[int, int], limit: int) -> dict[int, int]:
    """End offsets reading at most `limit` offsets in all, shared fairly between the partitions.

    Example:
        >>> _bounded({0: 0, 1: 0, 2: 0}, {0: 10, 1: 100, 2: 100}, 100)
        {0: 10, 1: 45, 2: 45}
    """
    end, room = dict(start), limit
    pending = sorted(start, key=lambda p: stable[p] - start[p])
    for n, partition in enumerate(pending):
        share = min(stable[partition] - start[partition], room // (len(pending) - n))
        end[partition] += share
        room -= share
    return end


def kafka_topic(spark, conn: config.Connection, batch: KafkaBatch, group: str):
    """The records of one batch of a topic: key, value, topic, partition, offset, timestamp,
    timestampType, and `topic_id` (the incarnation), read_committed, by consumers of `group`."""
    from pyspark.sql import functions as F

    topic = batch.topic
    return (spark.read.format("kafka")
            .option("kafka.bootstrap.servers", conn.servers)
            # Partitions are assigned, never subscribed: the group joins nothing and commits
            # nothing (the offsets live with the rows). A fixed one names the runner to the
            # broker's ACLs, and lets a long-lived session (--follow) reuse its consumers, which
            # Spark pools by group, instead of starting new ones for every batch.
            .option("kafka.group.id", group)
            .option("kafka.isolation.level", "read_committed")  # records of aborted transactions never show
            # A batch ends where the log ends, and the consumer's last fetch there waits for new
            # records up to this long: Kafka's default 500 ms was a third of a warm drain.
            .option("kafka.fetch.max.wait.ms", 20)
            .option("kafka.request.timeout.ms", KAFKA_TIMEOUT_MS)
            .option("kafka.default.api.timeout.ms", KAFKA_TIMEOUT_MS)
            # A broker that dies mid-read fails the task within this bound instead of Spark's 120 s.
            .option("kafkaConsumer.pollTimeoutMs", 2 * KAFKA_TIMEOUT_MS)
            .option("assign", json.dumps({topic: sorted(batch.start)}))
            .option("startingOffsets", json.dumps({topic: {str(p): o for p, o in batch.start.items()}}))
            .option("endingOffsets", json.dumps({topic: {str(p): o for p, o in batch.end.items()}}))
            .load()
            .withColumn("topic_id", F.lit(batch.topic_id)))
