"""`python -m datagen.kafka` against the real Kafka broker, each test on a topic of its own."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from itertools import islice

import jsonschema
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from datagen.events import EVENT_SCHEMA, events
from runner import config

pytestmark = pytest.mark.integration

SERVERS = config.env("KAFKA_BOOTSTRAP_SERVERS")
PUBLISHED = re.compile(r"published (\d+) event\(s\) to topic")
validator = jsonschema.Draft202012Validator(
    EVENT_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture
def topic() -> Iterator[str]:
    """A unique topic name; the generator creates the topic, the test deletes it."""
    name = f"dg_test_{uuid.uuid4().hex[:10]}"
    yield name
    admin = KafkaAdminClient(bootstrap_servers=SERVERS)
    try:
        if name in admin.list_topics():
            admin.delete_topics([name])
    finally:
        admin.close()


def generator(topic: str, *args: str, **overrides: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "datagen.kafka", *args], cwd=config.ROOT,
                            env={**os.environ, "KAFKA_TOPIC_NAME": topic, **overrides},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_line(process: subprocess.Popen, text: str) -> list[str]:
    """Read the generator's output up to the first line containing `text`."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"the generator ended without printing {text!r}:\n{''.join(lines)}")


def finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=120)
    return out


def published(output: str) -> int:
    return int(PUBLISHED.search(output).group(1))


def read_topic(topic: str) -> list[tuple[bytes, bytes]]:
    """Every message of the topic: reads from the beginning up to the end offsets."""
    consumer = KafkaConsumer(bootstrap_servers=SERVERS, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        messages = []
        deadline = time.monotonic() + 60  # a guard against hanging, not an assertion
        while any(consumer.position(p) < end[p] for p in partitions) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                messages.extend((r.key, r.value) for r in records)
        assert sum(end.values()) == len(messages)
        return messages
    finally:
        consumer.close()


def test_count_publishes_exactly_that_many_valid_events(topic):
    process = generator(topic, "--count", "500", "--interval", "0")
    output = finish(process)
    assert process.returncode == 0, output
    messages = read_topic(topic)
    assert len(messages) == 500 and published(output) == 500
    for key, value in messages:
        event = json.loads(value)
        validator.validate(event)
        assert key.decode() == event["email"]
    assert len({key for key, _ in messages}) == 500


def test_seed_makes_the_events_reproducible(topic):
    process = generator(topic, "--count", "50", "--interval", "0", "--seed", "3")
    assert process.wait(timeout=120) == 0
    assert sorted(read_topic(topic)) == sorted(islice(events(3), 50))


def test_topic_gets_the_configured_partitions(topic):
    process = generator(topic, "--count", "1", "--interval", "0", KAFKA_TOPIC_PARTITIONS="3")
    assert process.wait(timeout=120) == 0
    consumer = KafkaConsumer(bootstrap_servers=SERVERS)
    assert len(consumer.partitions_for_topic(topic)) == 3
    consumer.close()


def test_sigterm_mid_burst_keeps_every_acknowledged_event(topic):
    process = generator(topic, "--count", "10000000", "--interval", "0")
    wait_for_line(process, "sent 10000 event(s)")
    process.send_signal(signal.SIGTERM)
    output = finish(process)
    assert process.returncode == 0, output
    count = published(output)
    assert count >= 10000
    assert len(read_topic(topic)) == count


def test_sigint_stops_a_live_stream_cleanly(topic):
    process = generator(topic, "--interval", "0.05")
    wait_for_line(process, "published event 3 ")
    process.send_signal(signal.SIGINT)
    output = finish(process)
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert len(read_topic(topic)) == published(output) >= 3


def test_waits_for_an_unreachable_broker_and_resumes(topic):
    """The generator starts while nothing listens at its bootstrap address; once a proxy to the
    real broker opens there, it connects and publishes everything."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = generator(topic, "--count", "20", "--interval", "0",
                        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    lines = wait_for_line(process, "unreachable")
    assert f"127.0.0.1:{port}" in lines[-1] and "retrying in" in lines[-1]
    proxy = TcpProxy(port, SERVERS)
    try:
        output = "".join(lines) + finish(process)
    finally:
        proxy.close()
    assert process.returncode == 0, output
    assert "reachable again" in output
    assert len(read_topic(topic)) == published(output) == 20


class TcpProxy:
    """Forwards connections from 127.0.0.1:`port` to `target` (host:port) until closed."""

    def __init__(self, port: int, target: str) -> None:
        host, _, target_port = target.rpartition(":")
        self.target = (host, int(target_port))
        self.server = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.server.settimeout(0.2)
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed.set()
        self.server.close()
