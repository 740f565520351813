"""`stream` on the real Kafka and PostgreSQL: exactly once across kills, reruns and lost local state.

Each test gets a topic and a PostgreSQL schema of its own. The pipeline runs from an unchanged
copy of sql/stream: KAFKA_TOPIC_NAME names the test's topic, and the SQL reads it as
`events_topic`, whatever the topic is called.

The two kills are placed deterministically with PostgreSQL locks held by the test, never with
timing: an ACCESS EXCLUSIVE lock on `users` freezes a run while it reads and stages the batch
(mid-batch); a SHARE lock lets it read and stage everything and freezes it inside its publishing
transaction (between writing and committing). The test waits until the run's session is blocked
by its lock, kills the run's whole process group, and releases the lock.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from datagen.events import events
from runner import config
from tests.fixtures.kafka_broker import ScratchBroker

pytestmark = pytest.mark.integration

SERVERS = config.env("KAFKA_BOOTSTRAP_SERVERS")
LOCKED = "holds its lock"
TAKEN_EMAILS = [f"taken{i}@example.org" for i in range(5)]


# --- the events: 1,000 valid ones from the generator, 50 invalid ones of ten kinds ------------

def valid_events() -> list[tuple[bytes, bytes]]:
    return list(islice(events(seed=20261128), 1000))


def invalid_events(valid: list[tuple[bytes, bytes]]) -> list[tuple[bytes | None, bytes, str | None]]:
    """(key, value, expected reason): five of each kind of rejected event. A replayed event's
    reason (None here) depends on the batch it lands in, next to its original or after it."""
    good = json.loads(valid[0][1])

    def variant(i: int, without: tuple[str, ...] = (), **changes) -> bytes:
        event = {**good, "email": f"bad{i}-{uuid.uuid4().hex[:6]}@example.org", **changes}
        return json.dumps({k: v for k, v in event.items() if k not in without}).encode()

    bad: list[tuple[bytes | None, bytes, str | None]] = []
    for i in range(5):
        bad += [
            (None, f"not json {i}".encode(), "not a JSON object"),
            (None, [b"[1, 2, 3]", b'"a string"', b"42", b"null", b"\xff\xfe\x00garbage"][i], "not a JSON object"),
            (None, variant(i, without=("phone", "loyalty_status")), "missing phone, loyalty_status"),
            (None, variant(i, first_name="   "), "missing first_name"),
            (None, variant(i, registration_date=["yesterday", "2024-13-45T00:00:00", "2024", "1714567890",
                                                 "01/02/2024"][i]), "unparsable registration_date"),
            (None, variant(i, loyalty_status=["Platinum", "gold", "GOLD", "Diamond", "Bronz"][i]),
             "unknown loyalty_status"),
            (None, variant(i, last_name="x" * 101), "too long: last_name"),
            (None, variant(i, phone=f"555\u0000{i}"), "NUL character in phone"),
            (None, variant(i, email=TAKEN_EMAILS[i]), "email already registered"),
            # a producer's retry: the very same event again (the earlier copy wins)
            (valid[i][0], valid[i][1], None),
        ]
    return bad


# --- topic, schema and runs ---------------------------------------------------------------------

@dataclasses.dataclass
class Stream:
    """A topic, a PostgreSQL schema and a copy of the stream pipeline reading that topic."""

    topic: str
    schema: str
    pipeline: Path
    local_state: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "POSTGRESQL_APP_SCHEMA": self.schema, "KAFKA_TOPIC_NAME": self.topic,
                "SPARK_LOCAL_DIRS": str(self.local_state)}

    def pg(self):
        return dataclasses.replace(config.connection("postgresql"), schema=self.schema).connect()

    def publish(self, records: list[tuple[bytes | None, bytes]]) -> None:
        producer = KafkaProducer(bootstrap_servers=SERVERS, acks="all")
        for key, value in records:
            producer.send(self.topic, key=key, value=value)
        producer.flush()
        producer.close()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "runner", "run", str(self.pipeline)]

    def run(self) -> subprocess.CompletedProcess:
        """One run to completion; waits its turn while another run of `stream` holds the lock."""
        while True:
            self.local_state.mkdir(exist_ok=True)
            result = subprocess.run(self.command(), cwd=config.ROOT, env=self.env, capture_output=True,
                                    text=True, timeout=1800)
            if not (result.returncode == 3 and LOCKED in result.stderr):
                return result
            time.sleep(5)


@pytest.fixture
def stream(tmp_path: Path) -> Iterator[Stream]:
    tag = uuid.uuid4().hex[:10]
    topic, schema = f"pl_stream_{tag}", f"pl_stream_{tag}"
    admin = KafkaAdminClient(bootstrap_servers=SERVERS)
    admin.create_topics([NewTopic(topic, config.env_int("KAFKA_TOPIC_PARTITIONS", 3), 1)])
    subprocess.run(["bash", "local/initdb.sh", "postgresql"], cwd=config.ROOT, check=True, capture_output=True,
                   env={**os.environ, "POSTGRESQL_APP_SCHEMA": schema})
    pipeline = tmp_path / "stream"
    shutil.copytree(config.ROOT / "sql" / "stream", pipeline)
    try:
        yield Stream(topic, schema, pipeline, tmp_path / "local-state")
    finally:
        admin.delete_topics([topic])
        admin.close()
        db = Stream(topic, schema, pipeline, tmp_path).pg()
        with db.cursor() as cursor:
            cursor.execute(f'drop schema if exists "{schema}" cascade')
        db.commit()
        db.close()


def scalar(db, sql: str, *args):
    with db.cursor() as cursor:
        cursor.execute(sql, args or None)
        value = cursor.fetchone()[0]
    db.rollback()
    return value


def counts(db) -> tuple[int, int]:
    """(users, dead letters) in the stream's schema."""
    dead = scalar(db, "select to_regclass('stream_dead_letters') is not null")
    return (scalar(db, "select count(*) from users"),
            scalar(db, "select count(*) from stream_dead_letters") if dead else 0)


def assert_ran(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stderr[-3000:]}"


def kill_while_blocked(stream: Stream, lock_mode: str, statement_pattern: str) -> None:
    """Start a run, hold `lock_mode` on users until a statement of the run matching
    `statement_pattern` (ILIKE) waits for it, kill the run's process group, release the lock,
    and wait until PostgreSQL has ended the run's sessions (rolling back what they had open)."""
    holder = stream.pg()
    with holder.cursor() as cursor:
        cursor.execute(f"lock table users in {lock_mode} mode")
        cursor.execute("select pg_backend_pid()")
        holder_pid = cursor.fetchone()[0]
    watcher = stream.pg()
    watcher.autocommit = True
    blocked: list[int] = []
    run = None
    try:
        while not blocked:
            if run is None or run.poll() is not None:
                if run is not None:
                    error = run.stderr.read()
                    assert LOCKED in error, f"the run ended before it blocked:\n{error[-3000:]}"
                    time.sleep(5)  # another run of `stream` holds the pipeline's lock: wait our turn
                stream.local_state.mkdir(exist_ok=True)
                run = subprocess.Popen(stream.command(), cwd=config.ROOT, env=stream.env, start_new_session=True,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            with watcher.cursor() as cursor:
                cursor.execute("select pid from pg_stat_activity where %s = any(pg_blocking_pids(pid)) "
                               "and query ilike %s", (holder_pid, statement_pattern))
                blocked = [pid for (pid,) in cursor.fetchall()]
            time.sleep(0.2)
    finally:
        if run is not None and run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        holder.rollback()
        holder.close()
    while True:
        with watcher.cursor() as cursor:
            cursor.execute("select count(*) from pg_stat_activity where pid = any(%s)", (blocked,))
            if cursor.fetchone()[0] == 0:
                break
        time.sleep(0.2)
    watcher.close()


def offsets(db, topic: str) -> int:
    if not scalar(db, "select to_regclass('runner_kafka_offsets') is not null"):
        return 0
    return scalar(db, "select coalesce(sum(next_offset), 0) from runner_kafka_offsets "
                      "where consumer = 'stream' and topic = %s", topic)


# --- the scenario -------------------------------------------------------------------------------

def test_exactly_once_across_kills_reruns_and_lost_local_state(stream: Stream):
    valid = valid_events()
    bad = invalid_events(valid)
    db = stream.pg()
    with db.cursor() as cursor:  # users who already exist, so their e-mails are taken
        cursor.executemany("insert into users (first_name, last_name, email, registration_date, loyalty_status) "
                           "values ('Tak', 'En', %s, now(), 'Gold')", [(e,) for e in TAKEN_EMAILS])
    db.commit()
    before = scalar(db, "select count(*) from users")

    # Half of the events, one ordinary run.
    stream.publish(valid[:500] + [(k, v) for k, v, _ in bad[:25]])
    assert_ran(stream.run())
    assert counts(db) == (before + 500, 25)
    assert offsets(db, stream.topic) == 525

    # The other half; a run killed mid-batch (frozen while reading users to stage its rows) ...
    stream.publish(valid[500:] + [(k, v) for k, v, _ in bad[25:]])
    kill_while_blocked(stream, "access exclusive", "select%users%")
    assert counts(db) == (before + 500, 25)
    assert offsets(db, stream.topic) == 525

    # ... and one killed between writing and committing (inside its publishing transaction).
    kill_while_blocked(stream, "share", "insert into%users%")
    assert counts(db) == (before + 500, 25)
    assert offsets(db, stream.topic) == 525

    # The rerun publishes the second half exactly once.
    assert_ran(stream.run())
    assert counts(db) == (before + 1000, 50)
    assert offsets(db, stream.topic) == 1050

    # Without any local state, a rerun finds nothing new: the offsets live in PostgreSQL.
    shutil.rmtree(stream.local_state, ignore_errors=True)
    assert_ran(stream.run())
    assert counts(db) == (before + 1000, 50)
    assert offsets(db, stream.topic) == 1050

    # Every valid event is a user exactly once, with its values.
    with db.cursor() as cursor:
        cursor.execute("select first_name, last_name, email, phone, registration_date, loyalty_status "
                       "from users where email <> all(%s)", (TAKEN_EMAILS,))
        users = cursor.fetchall()
    db.rollback()
    expected = [json.loads(value) for _, value in valid]
    assert sorted(u[2] for u in users) == sorted(e["email"] for e in expected)
    by_email = {e["email"]: e for e in expected}
    for first_name, last_name, email, phone, registered, loyalty in users:
        event = by_email[email]
        assert (first_name, last_name, phone, loyalty) == \
            (event["first_name"], event["last_name"], event["phone"], event["loyalty_status"])
        assert registered.strftime("%Y-%m-%dT%H:%M:%SZ") == event["registration_date"]

    # Every invalid event is a dead letter exactly once, with its payload, reason and coordinates.
    with db.cursor() as cursor:
        cursor.execute("select payload, reason, kafka_topic, kafka_partition, kafka_offset from stream_dead_letters")
        letters = cursor.fetchall()
    db.rollback()
    assert len({(t, p, o) for _, _, t, p, o in letters}) == 50
    assert {t for _, _, t, _, _ in letters} == {stream.topic}
    # The replays of valid[0..4] published in the first half share a batch with their originals;
    # the later ones find their e-mail already registered by the first run.
    replay_reasons = ["duplicate email in batch" if n < 25 else "email already registered"
                      for n, (_, _, reason) in enumerate(bad) if reason is None]
    assert replay_reasons.count("duplicate email in batch") == 2
    expected_reasons = Counter([r for _, _, r in bad if r is not None] + replay_reasons)
    assert Counter(reason for _, reason, _, _, _ in letters) == expected_reasons
    payloads = Counter(payload for payload, _, _, _, _ in letters)
    for _, value, _ in bad:
        if b"\x00" not in value and b"\xff" not in value:
            assert payloads[value.decode()] >= 1, value
    db.close()


def test_valid_events_still_land_when_every_other_event_is_broken(stream: Stream):
    """Invalid events never stop valid ones, even when they are the majority of a batch."""
    valid = valid_events()[:20]
    records: list[tuple[bytes | None, bytes]] = []
    for key, value in valid:
        records += [(None, b"{broken"), (key, value), (None, b'{"first_name": "Only"}')]
    stream.publish(records)

    result = stream.run()

    assert_ran(result)
    db = stream.pg()
    assert counts(db) == (20, 40)
    db.close()


# --- Kafka's real life: transactions, topic resets, retention gaps, bounded batches ------------

def event(n: int, **changes) -> bytes:
    """A valid registration, unique by `n`."""
    return json.dumps({"first_name": "Tx", "last_name": f"N{n}", "email": f"e{n}-{uuid.uuid4().hex[:8]}@example.org",
                       "phone": "555-0000", "registration_date": "2024-05-01T10:00:00Z",
                       "loyalty_status": "Gold", **changes}).encode()


def transactional_producer(stream: Stream) -> KafkaProducer:
    producer = KafkaProducer(bootstrap_servers=SERVERS, transactional_id=f"test-{stream.topic}-{uuid.uuid4().hex[:6]}")
    producer.init_transactions()
    return producer


def in_transaction(producer: KafkaProducer, topic: str, values: list[bytes]) -> None:
    producer.begin_transaction()
    for value in values:
        producer.send(topic, value=value)
    producer.flush()  # on the broker before it is committed or aborted


def gaps(db, topic: str) -> list[tuple]:
    if not scalar(db, "select to_regclass('runner_kafka_gaps') is not null"):
        return []
    with db.cursor() as cursor:
        cursor.execute("select kafka_partition, first_offset, last_offset, reason from runner_kafka_gaps "
                       "where consumer = 'stream' and topic = %s order by kafka_partition, first_offset", (topic,))
        rows = cursor.fetchall()
    db.rollback()
    return rows


def test_only_committed_transactions_become_users_and_an_open_one_never_stalls_a_run(stream: Stream):
    producer = transactional_producer(stream)
    in_transaction(producer, stream.topic, [event(i) for i in range(40)])
    producer.commit_transaction()
    in_transaction(producer, stream.topic, [event(100 + i) for i in range(30)])
    producer.abort_transaction()
    in_transaction(producer, stream.topic, [event(200 + i) for i in range(20)])  # left open

    started = time.monotonic()
    assert_ran(stream.run())
    db = stream.pg()
    assert counts(db) == (40, 0), "only the committed transaction is read; the open one waits"
    assert time.monotonic() - started < 120, "a run does not wait for an open transaction"

    producer.abort_transaction()  # open, then aborted: never lands
    assert_ran(stream.run())
    assert counts(db) == (40, 0)

    in_transaction(producer, stream.topic, [event(300 + i) for i in range(15)])
    assert_ran(stream.run())  # open: nothing yet
    assert counts(db) == (40, 0)
    producer.commit_transaction()  # open, then committed: lands once
    assert_ran(stream.run())
    assert_ran(stream.run())
    assert counts(db) == (55, 0)
    # The markers and aborted records were skipped over, never recorded as lost.
    assert gaps(db, stream.topic) == []
    producer.close()
    db.close()


def recreate(topic: str, partitions: int) -> tuple[str, str]:
    """Delete `topic` and create it again; returns the old and the new topic id."""
    admin = KafkaAdminClient(bootstrap_servers=SERVERS)
    try:
        old = admin.describe_topics([topic])[0]["topic_id"]
        admin.delete_topics([topic])
        deadline = time.monotonic() + 60
        while True:
            try:
                admin.create_topics([NewTopic(topic, partitions, 1)])
                break
            except Exception:  # noqa: BLE001 - the deletion is still under way
                assert time.monotonic() < deadline, f"{topic} could not be created again"
                time.sleep(0.5)
        while (new := admin.describe_topics([topic])[0]["topic_id"]) in (old, None):  # the broker catches up
            assert time.monotonic() < deadline, f"{topic} still has its old id"
            time.sleep(0.5)
        return str(old), str(new)
    finally:
        admin.close()


def test_a_deleted_and_recreated_topic_is_read_from_its_start_and_its_dead_letters_never_collide(stream: Stream):
    broken = b"\xff\xfe\x00not json"  # not UTF-8: its bytes are kept exactly
    stream.publish([(None, event(i)) for i in range(10)] + [(None, broken), (None, b"{broken")])
    assert_ran(stream.run())
    db = stream.pg()
    assert counts(db) == (10, 2)

    old_id, new_id = recreate(stream.topic, 1)
    # The new topic's offsets start at 0 again: the same coordinates as the old dead letters.
    stream.publish([(None, event(100 + i)) for i in range(5)] + [(None, broken), (None, b"{broken")])
    result = stream.run()
    assert_ran(result)
    assert "deleted and recreated" in result.stderr
    assert counts(db) == (15, 4), "every event of the new topic lands, nothing published to it is lost"

    with db.cursor() as cursor:
        cursor.execute("select kafka_topic_id, kafka_partition, kafka_offset, payload_bytes, payload "
                       "from stream_dead_letters order by kafka_topic_id, kafka_offset")
        letters = cursor.fetchall()
    db.rollback()
    assert len({(t, p, o) for t, p, o, _, _ in letters}) == 4
    assert Counter(t for t, _, _, _, _ in letters) == {old_id: 2, new_id: 2}, letters
    assert [bytes(b) for _, _, _, b, _ in letters].count(broken) == 2, "the payload's bytes, exactly"
    assert "\x00" not in letters[0][4], "the readable text holds no NUL"
    # Nothing is recorded as lost: a new incarnation is not a gap.
    assert gaps(db, stream.topic) == []
    db.close()


def test_events_deleted_before_they_were_read_are_a_recorded_gap_and_the_run_goes_on(stream: Stream):
    producer = KafkaProducer(bootstrap_servers=SERVERS, acks="all")

    def send(values: list[bytes]) -> None:
        for value in values:
            producer.send(stream.topic, value=value, partition=0)
        producer.flush()

    send([event(i) for i in range(5)])
    assert_ran(stream.run())
    send([event(10 + i) for i in range(10)])  # offsets 5..14 of partition 0
    admin = KafkaAdminClient(bootstrap_servers=SERVERS)
    from kafka import TopicPartition
    admin.delete_records({TopicPartition(stream.topic, 0): 9})  # 5..8 are gone unread (retention's effect)
    admin.close()

    result = stream.run()
    assert_ran(result)
    db = stream.pg()
    assert counts(db) == (5 + 6, 0)
    assert [g[:3] for g in gaps(db, stream.topic)] == [(0, 5, 8)]
    assert "below the log start" in gaps(db, stream.topic)[0][3]
    assert "5..8 lost" in result.stderr
    assert_ran(stream.run())
    assert len(gaps(db, stream.topic)) == 1, "a gap is recorded once"
    producer.close()
    db.close()


def test_a_position_past_the_log_end_is_a_recorded_gap_and_the_next_events_are_not_skipped(stream: Stream):
    producer = KafkaProducer(bootstrap_servers=SERVERS, acks="all")
    for i in range(5):
        producer.send(stream.topic, value=event(i), partition=0)
    producer.flush()
    assert_ran(stream.run())
    db = stream.pg()
    # The broker lost its tail (an unclean leader election): the stored position, 12, is past
    # the log's end, 5. Made so by moving the position, as one broker cannot lose its tail.
    with db.cursor() as cursor:
        cursor.execute("update runner_kafka_offsets set next_offset = 12 where topic = %s and kafka_partition = 0",
                       (stream.topic,))
    db.commit()
    result = stream.run()
    assert_ran(result)
    assert [g[:3] for g in gaps(db, stream.topic)] == [(0, 5, 11)]
    assert "lost from the log's tail" in result.stderr
    assert offsets(db, stream.topic) == 5, "reading goes on from the log's end"
    for i in range(3):  # written at offsets 5..7, below the position stored before the loss
        producer.send(stream.topic, value=event(100 + i), partition=0)
    producer.flush()
    assert_ran(stream.run())
    assert counts(db) == (8, 0), "the events written after the loss land, none is skipped"
    assert len(gaps(db, stream.topic)) == 1
    producer.close()
    db.close()


def test_a_broker_that_lost_its_tail_and_grew_past_the_position_again_skips_none_of_the_new_events(
        stream: Stream, tmp_path: Path):
    """A real loss: a private broker is killed, its log cut back to offset 12 (what a new leader
    without the last records holds after an unclean election), started again, and 30 new events
    are written at 12..41, past the stored position, 20. The run must notice from the leader
    epochs, not from the offsets (the log is longer than the position again), record 12..19 as
    lost and read all 30 new events."""
    broker = ScratchBroker(tmp_path / "kafka")
    broker.start()
    try:
        admin = KafkaAdminClient(bootstrap_servers=broker.servers)
        admin.create_topics([NewTopic(stream.topic, 1, 1)])
        admin.close()
        env = {**stream.env, "KAFKA_BOOTSTRAP_SERVERS": broker.servers}

        def send(values: list[bytes]) -> None:
            producer = KafkaProducer(bootstrap_servers=broker.servers, acks="all")
            for value in values:
                producer.send(stream.topic, value=value, partition=0)
                producer.flush()  # one batch each: the log can be cut at any offset
            producer.close()

        def run() -> subprocess.CompletedProcess:
            return subprocess.run(stream.command(), cwd=config.ROOT, env=env, capture_output=True, text=True,
                                  timeout=600)

        send([event(i) for i in range(20)])
        assert_ran(run())
        db = stream.pg()
        assert counts(db) == (20, 0)

        broker.kill()
        broker.cut_log(stream.topic, 0, 12)
        broker.start()
        send([event(100 + i) for i in range(30)])
        result = run()
        assert_ran(result)
        assert [g[:3] for g in gaps(db, stream.topic)] == [(0, 12, 19)]
        assert "12..19 lost" in result.stderr
        assert counts(db) == (50, 0), "the 30 events written after the loss land, none is skipped"
        assert offsets(db, stream.topic) == 42
        assert_ran(run())
        assert counts(db) == (50, 0) and len(gaps(db, stream.topic)) == 1, "a rerun reads and records nothing again"
        db.close()
    finally:
        broker.stop()


@pytest.mark.parametrize("layout", ["keyed by pipeline, without topic ids", "without leader epochs"])
def test_an_offsets_table_of_an_earlier_release_is_brought_up_to_date_and_reading_resumes_where_it_stood(
        stream: Stream, layout: str):
    db = stream.pg()
    first, id_column = ("pipeline", "") if layout.startswith("keyed") else ("consumer", "topic_id varchar(36), ")
    with db.cursor() as cursor:
        cursor.execute(f"create table runner_kafka_offsets ({first} varchar(100) not null, topic varchar(249) "
                       f"not null, kafka_partition int not null, {id_column}next_offset bigint not null, "
                       "updated_at timestamp not null default current_timestamp, "
                       f"primary key ({first}, topic, kafka_partition))")
        # Events 0..3 of partition 0 were consumed by the earlier release.
        cursor.execute("insert into runner_kafka_offsets (" + first + ", topic, kafka_partition, next_offset) "
                       "values ('stream', %s, 0, 4)", (stream.topic,))
    db.commit()
    producer = KafkaProducer(bootstrap_servers=SERVERS, acks="all")
    for i in range(10):
        producer.send(stream.topic, value=event(i), partition=0)
    producer.close()
    assert_ran(stream.run())
    assert counts(db) == (6, 0), "reading resumed at offset 4"
    assert scalar(db, "select count(*) from runner_kafka_offsets where consumer = 'stream' and topic = %s "
                      "and topic_id is not null and leader_epoch is not null", stream.topic) == 3
    assert gaps(db, stream.topic) == []
    db.close()


def test_a_dead_letters_table_of_the_earlier_layout_stops_the_run_naming_the_mends_and_make_up_upgrades_it(
        stream: Stream):
    """stream_dead_letters as the previous release made it: no payload_bytes, no kafka_topic_id,
    keyed by the topic's name. The run fails before loading anything, naming each difference
    and the statements that mend it; the schema init that `make up` runs (local/initdb.sh, the
    same SQL as the PostgreSQL image's init) upgrades it, and then every event lands once."""
    db = stream.pg()
    with db.cursor() as cursor:
        cursor.execute("create table stream_dead_letters (payload varchar(1048576), reason varchar(200), "
                       "kafka_topic varchar(249) not null, kafka_partition int not null, kafka_offset bigint not null, "
                       "kafka_timestamp timestamp, primary key (kafka_topic, kafka_partition, kafka_offset))")
        # Two topics' letters at the same coordinates: they must stay apart under the new key.
        cursor.execute("insert into stream_dead_letters values ('old', 'not a JSON object', 'x', 0, 0, now()), "
                       "('old', 'not a JSON object', 'y', 0, 0, now())")
    db.commit()
    stream.publish([(None, event(1)), (None, b"not json")])
    result = stream.run()
    assert result.returncode == 1, result.stderr[-2000:]
    message = result.stderr.strip().splitlines()[-1]
    assert "stream_dead_letters" in message and "payload_bytes, kafka_topic_id" in message, message
    assert "primary key is (kafka_topic, kafka_partition, kafka_offset)" in message, message
    assert 'ALTER TABLE "stream_dead_letters" ADD COLUMN "payload_bytes" bytea' in message, message
    assert counts(db) == (0, 2) and offsets(db, stream.topic) == 0, "nothing was published"

    for _ in range(2):  # the upgrade runs on every start, and changes nothing the second time
        subprocess.run(["bash", "local/initdb.sh", "postgresql"], cwd=config.ROOT, check=True, capture_output=True,
                       env={**os.environ, "POSTGRESQL_APP_SCHEMA": stream.schema})
    assert_ran(stream.run())
    assert counts(db) == (1, 3)
    assert scalar(db, "select count(distinct kafka_topic_id) from stream_dead_letters "
                      "where kafka_topic_id like 'unknown-%%'") == 2
    db.close()


def test_a_backlog_and_a_burst_of_large_invalid_payloads_drain_in_bounded_runs(stream: Stream):
    """200,000 queued events and 2,000 invalid 100 KB payloads, with the default driver memory:
    each run reads at most max_events_per_run, and every event is a user or a dead letter."""
    result = subprocess.run([sys.executable, "-m", "datagen.kafka", "--count", "200000", "--interval", "0"],
                            cwd=config.ROOT, env=stream.env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    large = b'{"first_name": "' + b"x" * 100_000 + b'"}'
    producer = KafkaProducer(bootstrap_servers=SERVERS, acks="all", max_request_size=1_048_576)
    for _ in range(2000):
        producer.send(stream.topic, value=large)
    producer.flush()
    producer.close()

    drained = subprocess.run([*stream.command(), "--drain"], cwd=config.ROOT, env=stream.env,
                             capture_output=True, text=True, timeout=1800, check=False)
    assert_ran(drained)
    assert drained.stderr.count("left for the next run") >= 2, "the backlog took several bounded runs"
    db = stream.pg()
    users, dead = counts(db)
    assert users + dead == 202_000
    assert scalar(db, "select count(*) from stream_dead_letters where octet_length(payload_bytes) = %s",
                  len(large)) == 2000
    db.close()


# --- what the stream accepts, every later pipeline carries ---------------------------------

def test_dates_the_stream_accepts_replicate_and_marts_carry_unchanged(stream: Stream):
    edges = ["1000-01-01T00:00:00Z", "1000-01-01T00:30:00+00:30", "1582-10-04T23:59:59Z", "1582-10-15T00:00:00Z",
             "1899-12-31T23:59:59.999999Z",
             "1969-12-31T23:00:00Z", "1970-01-01T00:00:00Z", "2000-02-29T23:59:59.999999Z", "2024-03-31T02:30:00Z"]
    rejected = {"0999-12-31T23:59:59Z": "registration_date outside the years 1000-9999 (UTC)",
                "1000-01-01T00:30:00+01:00": "registration_date outside the years 1000-9999 (UTC)",
                "9999-12-31T23:00:00-05:00": "registration_date outside the years 1000-9999 (UTC)",
                "2999-01-01": "registration_date in the future",
                "1582-10-10T12:00:00Z": "registration_date in 1582-10-05..14, days JDBC drivers cannot carry"}
    stream.publish([(None, event(i, registration_date=d)) for i, d in enumerate(edges + list(rejected))])
    assert_ran(stream.run())
    db = stream.pg()
    with db.cursor() as cursor:
        cursor.execute("select payload, reason from stream_dead_letters")
        letters = cursor.fetchall()
        cursor.execute("select user_id, registration_date from users order by user_id")
        in_postgresql = cursor.fetchall()
    db.rollback()
    db.close()
    assert sorted(r for _, r in letters) == sorted(rejected.values()), [(p[95:], r) for p, r in letters]

    scratch = stream.schema
    env = {**stream.env, "MYSQL_APP_DB": scratch}
    subprocess.run(["bash", "local/initdb.sh", "mysql"], cwd=config.ROOT, env=env, check=True, capture_output=True)
    try:
        for pipeline in ("replicate", "marts"):
            result = subprocess.run([sys.executable, "-m", "runner", "run", pipeline], cwd=config.ROOT, env=env,
                                    capture_output=True, text=True, timeout=900, check=False)
            assert_ran(result)
        my = dataclasses.replace(config.connection("mysql"), database=scratch).connect()
        with my.cursor() as cursor:
            cursor.execute("select user_id, registration_date from users order by user_id")
            in_mysql = [tuple(row) for row in cursor.fetchall()]
            cursor.execute("select data_type from information_schema.columns where table_schema = %s "
                           "and table_name = 'users' and column_name = 'registration_date'", (scratch,))
            assert cursor.fetchone()[0].lower() == "datetime"
        my.close()
        assert in_mysql == [tuple(row) for row in in_postgresql], "the same values in PostgreSQL and MySQL"
    finally:
        my = dataclasses.replace(config.connection("mysql"), database=scratch).connect()
        with my.cursor() as cursor:
            cursor.execute(f"drop database if exists `{scratch}`")
        my.close()


# --- a broker that cannot be reached -------------------------------------------------------

def test_a_broker_that_never_answers_is_exit_3_within_the_timeout(stream: Stream):
    """Every Kafka metadata call is bounded: a listener that accepts and never answers (a hung
    broker) and a closed port both end the run as transient (exit 3), naming the broker."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        for servers in (f"127.0.0.1:{silent.getsockname()[1]}", "127.0.0.1:9"):
            started = time.monotonic()
            result = subprocess.run(stream.command(), cwd=config.ROOT, capture_output=True, text=True, timeout=300,
                                    env={**stream.env, "KAFKA_BOOTSTRAP_SERVERS": servers}, check=False)
            assert result.returncode == 3, result.stderr[-2000:]
            assert servers in result.stderr.splitlines()[-1]
            assert time.monotonic() - started < 90
    finally:
        silent.close()
