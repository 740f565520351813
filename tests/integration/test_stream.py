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
