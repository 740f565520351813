"""Publish to Kafka without losing events while the broker comes and goes.

`Publisher` wraps a KafkaProducer with `acks=all` (idempotent): it connects with backoff
while the broker is unreachable, re-sends events whose delivery failed, and `drain` waits
until everything sent so far is acknowledged, logging while the broker does not answer.

Example (needs a Kafka broker):

    stop = threading.Event()
    publisher = Publisher("localhost:9092", "new_users_events", stop)
    publisher.connect()
    publisher.send(b"ann@example.com", b'{"first_name": "Ann"}')
    publisher.drain()
    publisher.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from runner.errors import one_line

log = logging.getLogger("datagen.kafka")


def _zstd_available() -> bool:
    try:
        import zstandard  # noqa: F401  (kafka-python's zstd codec)
    except ImportError:
        return False
    return True


PRODUCER_SETTINGS: dict[str, Any] = {
    "acks": "all",
    # Compressed batches are several times smaller, and kafka-python checksums every batch in
    # pure Python (unless the crc32c package is installed): compressing first made publishing
    # about three times faster here. Consumers (Spark's Kafka source included) decompress.
    "compression_type": "zstd" if _zstd_available() else None,
    "enable_idempotence": True,
    "linger_ms": 20,             # batch what arrives within 20 ms ...
    "batch_size": 512 * 1024,    # ... into large batches: throughput without per-message flushes
    "max_block_ms": 10_000,      # send() gives up after 10 s (buffer full, no metadata): we retry
    "request_timeout_ms": 10_000,
    "delivery_timeout_ms": 30_000,  # a record not acknowledged in 30 s fails: we re-send it
    "bootstrap_timeout_ms": 5_000,
    "reconnect_backoff_max_ms": 5_000,
    "metrics_enabled": False,
}

BACKOFF_SECONDS = (1, 2, 4, 8, 15, 30)
"""Waits between attempts while the broker is unreachable; the last one repeats."""

COLLECT_EVERY = 1024
"""How often (in events) `send` counts acknowledgements and re-sends failed events."""


class Stopped(Exception):
    """A stop was requested while waiting for the broker."""


class Publisher:
    """A resilient producer for one topic: counts acknowledged events, re-sends failed ones.

    Acknowledgements are collected from the futures in order of sending instead of through
    per-record callbacks, which would run on (and slow down) the producer's I/O thread.
    """

    def __init__(self, servers: str, topic: str, stop: threading.Event,
                 settings: dict[str, Any] | None = None) -> None:
        self.servers = servers
        self.topic = topic
        self.stop = stop
        self.settings = {**PRODUCER_SETTINGS, **(settings or {})}
        self.producer: KafkaProducer | None = None
        self.partition_count: int | None = None
        self.sent = 0
        self.acked = 0
        self._in_flight: deque[tuple[bytes, bytes, int | None, Any]] = deque()
        self._failed: list[tuple[bytes, bytes, int | None, BaseException]] = []

    @property
    def pending(self) -> int:
        """Events handed to `send` and not acknowledged yet (in flight, or failed and waiting)."""
        return self.sent - self.acked

    def connect(self) -> None:
        """Create the producer, retrying with backoff while the broker is unreachable.

        Raises Stopped if a stop is requested before the broker answers.
        """
        for attempt in _attempts():
            if self.stop.is_set():
                raise Stopped()
            try:
                self.producer = KafkaProducer(bootstrap_servers=self.servers, **self.settings)
            except KafkaError as error:
                wait = _backoff(attempt)
                log.warning("Kafka at %s unreachable (%s); retrying in %d s",
                            self.servers, one_line(error), wait)
                if self.stop.wait(wait):
                    raise Stopped() from None
                continue
            if attempt:
                log.info("Kafka at %s is reachable again; resuming", self.servers)
            return

    def ensure_topic(self, partitions: int) -> None:
        """Create the topic with `partitions` partitions unless it exists (a warning if it fails),
        then learn its partition count."""
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.servers, request_timeout_ms=10_000)
            try:
                if self.topic not in admin.list_topics():
                    admin.create_topics([NewTopic(self.topic, partitions, 1)])
                    log.info("created topic %s with %d partitions", self.topic, partitions)
            finally:
                admin.close()
        except TopicAlreadyExistsError:
            pass
        except KafkaError as error:
            log.warning("could not check topic %s (%s); the broker may create it on first write",
                        self.topic, one_line(error))
        try:
            self.partition_count = len(self.producer.partitions_for(self.topic))
        except KafkaError:
            self.partition_count = None  # the producer's own partitioner will pick

    def send(self, key: bytes, value: bytes, partition: int | None = None) -> None:
        """Hand one event to the producer; blocks with backoff while the producer cannot take it.

        Raises Stopped if a stop is requested while the producer cannot take it.
        """
        self._send(key, value, partition)
        self.sent += 1
        if self.sent % COLLECT_EVERY == 0:
            self._collect()
            self._resend_failed()

    def drain(self, give_up_after: float | None = None) -> bool:
        """Wait until every event sent so far is acknowledged, re-sending failed ones.

        Returns False if `give_up_after` seconds pass first (None: wait as long as it takes,
        but only while no stop is requested).
        """
        deadline = None if give_up_after is None else time.monotonic() + give_up_after
        for attempt in _attempts():
            self._resend_failed()
            try:
                self.producer.flush(timeout=5)
            except KafkaTimeoutError:
                log.warning("Kafka at %s: %d event(s) not acknowledged yet; still waiting",
                            self.servers, self.pending)
            self._collect()
            if self.pending == 0:
                if attempt:
                    log.info("Kafka at %s acknowledged everything; resuming", self.servers)
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if deadline is None and self.stop.is_set():
                return False
            if self._failed:
                wait = _backoff(attempt)
                log.warning("Kafka at %s: %d event(s) failed (%s); re-sending in %d s",
                            self.servers, len(self._failed), one_line(self._failed[0][3]), wait)
                time.sleep(wait)
        return False  # pragma: no cover - _attempts() never ends

    def close(self) -> None:
        """Flush what can be flushed and close the producer."""
        if self.producer is not None:
            self.producer.close(timeout=5)
            self.producer = None

    def _send(self, key: bytes, value: bytes, partition: int | None) -> None:
        for attempt in _attempts():
            try:
                future = self.producer.send(self.topic, value=value, key=key, partition=partition)
            except KafkaTimeoutError as error:
                if self.stop.is_set():
                    raise Stopped() from None
                wait = _backoff(attempt)
                log.warning("Kafka at %s does not take events (%s); retrying in %d s",
                            self.servers, one_line(error), wait)
                self.stop.wait(wait)
                continue
            self._in_flight.append((key, value, partition, future))
            return

    def _collect(self) -> None:
        """Count the acknowledged events at the head of the in-flight queue; set failed ones aside."""
        in_flight = self._in_flight
        while in_flight and in_flight[0][3].is_done:
            key, value, partition, future = in_flight.popleft()
            if future.exception is None:
                self.acked += 1
            else:
                self._failed.append((key, value, partition, future.exception))

    def _resend_failed(self) -> None:
        failed, self._failed = self._failed, []
        for key, value, partition, _ in failed:
            self._send(key, value, partition)


def _backoff(attempt: int) -> int:
    return BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]


def _attempts():
    attempt = 0
    while True:
        yield attempt
        attempt += 1
