"""Publish user-registration events to Kafka: `python -m datagen.kafka`.

One JSON event (first_name, last_name, email, phone, registration_date, loyalty_status) every
KAFKA_DATAGEN_PERIOD_SECS seconds to KAFKA_TOPIC_NAME until stopped, keyed by its e-mail.
Delivery is `acks=all`; SIGTERM or SIGINT stop the stream after every event sent so far is
acknowledged; while the broker is unreachable the generator retries with backoff, logs it,
and resumes when the broker is back.

Example:
    $ python -m datagen.kafka                              # a live stream, until stopped
    $ python -m datagen.kafka --count 500 --interval 0 --seed 7

Exit codes: 0 done or stopped, 2 bad configuration or usage, 3 events left unacknowledged
because Kafka stayed unreachable.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from itertools import islice

from datagen.events import BATCH, event_batches, seeded_clock, wall_clock
from datagen.partition import partitions
from datagen.publish import Publisher, Stopped
from runner import config
from runner.config import ConfigError

PROG = "python -m datagen.kafka"
SHUTDOWN_GRACE_SECONDS = 30.0
"""How long a stopping generator waits for Kafka to acknowledge what it already sent."""
PROGRESS_EVERY = 10_000

log = logging.getLogger("datagen.kafka")


def non_negative(kind: type):
    """argparse type: a number of `kind` that is not negative."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
        return value
    return parse


def parser() -> argparse.ArgumentParser:
    """The command line of `python -m datagen.kafka`."""
    p = argparse.ArgumentParser(
        prog=PROG, description="Publish JSON user-registration events to KAFKA_TOPIC_NAME.")
    p.add_argument("--count", type=non_negative(int), metavar="N",
                   help="publish N events and exit (default: until SIGTERM/SIGINT)")
    p.add_argument("--interval", type=non_negative(float), metavar="SECONDS",
                   help="seconds between events; 0 = as fast as the broker takes them "
                        "(default: KAFKA_DATAGEN_PERIOD_SECS)")
    p.add_argument("--seed", type=int, metavar="N",
                   help="reproducible events, registration times included (default: random "
                        "content registered at the current time)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the generator; returns the exit code."""
    args = parser().parse_args(argv)
    _configure_logging()
    try:
        interval = config.env_float("KAFKA_DATAGEN_PERIOD_SECS", 3) if args.interval is None else args.interval
        servers = config.connection("kafka").servers
        topic = config.env("KAFKA_TOPIC_NAME")
        topic_partitions = config.env_int("KAFKA_TOPIC_PARTITIONS", 3)
    except ConfigError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2

    seed = secrets.randbelow(2**31) if args.seed is None else args.seed
    clock = wall_clock if args.seed is None else seeded_clock(seed)
    # A live stream draws one event at a time so its registration time is the current one.
    stream = event_batches(seed, clock, batch=BATCH if interval == 0 else 1)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return publish(stream, Publisher(servers, topic, stop), args.count, interval, topic_partitions,
                       seed)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def publish(batches: Iterator[list[tuple[bytes, bytes]]], publisher: Publisher, count: int | None,
            interval: float, topic_partitions: int, seed: int) -> int:
    """Send `count` events (None: until stopped) from `batches`, one every `interval` seconds."""
    stop = publisher.stop
    try:
        publisher.connect()
    except Stopped:
        log.info("stopped before Kafka at %s was reachable; nothing published", publisher.servers)
        return 0
    publisher.ensure_topic(topic_partitions)
    log.info("publishing %s to topic %s at %s, %s, seed %d",
             "events until stopped" if count is None else f"{count} event(s)", publisher.topic,
             publisher.servers, f"one every {interval:g} s" if interval else "as fast as possible",
             seed)
    started = time.monotonic()
    try:
        for key, value, partition in islice(_with_partitions(batches, publisher), count):
            if stop.is_set():
                break
            publisher.send(key, value, partition)
            if interval > 0:
                if publisher.drain():
                    log.info("published event %d (key %s)", publisher.acked, key.decode())
                stop.wait(interval)
            elif publisher.sent % PROGRESS_EVERY == 0:
                log.info("sent %d event(s), %d acknowledged", publisher.sent, publisher.acked)
    except Stopped:
        pass
    if stop.is_set():
        log.info("stop requested; waiting for Kafka to acknowledge %d event(s) in flight",
                 publisher.pending)
    # Wait for every acknowledgement; once a stop is requested, for a bounded time only.
    complete = publisher.drain() or publisher.drain(give_up_after=SHUTDOWN_GRACE_SECONDS)
    seconds = time.monotonic() - started
    publisher.close()
    log.info("published %d event(s) to topic %s in %.2f s (%.0f events/s)", publisher.acked,
             publisher.topic, seconds, publisher.acked / seconds if seconds else 0.0)
    if not complete:
        log.error("%d event(s) were not acknowledged by Kafka at %s and are not published",
                  publisher.pending, publisher.servers)
        return 3
    return 0


def _with_partitions(batches: Iterator[list[tuple[bytes, bytes]]],
                     publisher: Publisher) -> Iterator[tuple[bytes, bytes, int | None]]:
    """(key, value, partition): Kafka's default partition for the key, hashed a batch at a time."""
    for batch in batches:
        if publisher.partition_count:
            chosen = partitions([key for key, _ in batch], publisher.partition_count).tolist()
        else:
            chosen = [None] * len(batch)
        for (key, value), partition in zip(batch, chosen):
            yield key, value, partition


def _configure_logging() -> None:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # kafka-python logs every refused connection; our own lines say what matters, once.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


if __name__ == "__main__":
    sys.exit(main())
