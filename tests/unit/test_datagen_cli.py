"""The generators' command lines: bad input stops with one line naming the key or host:port."""

from __future__ import annotations

import logging
import socket
import threading

import pytest

from datagen import kafka as kafka_cli
from datagen import postgres as postgres_cli
from datagen.publish import Publisher, Stopped


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("value, problem", [("abc", "not a whole number"), ("-5", "negative")])
def test_bad_size_names_the_key(monkeypatch, capsys, value, problem):
    monkeypatch.setenv("PG_DATAGEN_NUM_USERS", value)
    assert postgres_cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "PG_DATAGEN_NUM_USERS" in err and problem in err


def test_orders_without_users_are_refused_naming_the_keys(monkeypatch, capsys):
    monkeypatch.setenv("PG_DATAGEN_NUM_USERS", "0")
    assert postgres_cli.main([]) == 2
    assert "PG_DATAGEN_NUM_ORDERS" in capsys.readouterr().err


def test_unreachable_database_names_host_and_port(monkeypatch, capsys):
    port = closed_port()
    monkeypatch.setenv("POSTGRESQL_APP_HOST", "127.0.0.1")
    monkeypatch.setenv("POSTGRESQL_APP_PORT", str(port))
    assert postgres_cli.main([]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"127.0.0.1:{port}" in err
    assert "finals_pass" not in err


@pytest.mark.parametrize("argv", [["--scale", "0"], ["--scale", "x"], ["--seed", "y"]])
def test_bad_postgres_arguments_are_usage_errors(argv):
    with pytest.raises(SystemExit) as exit_:
        postgres_cli.main(argv)
    assert exit_.value.code == 2


def test_scale_multiplies_the_configured_sizes(monkeypatch):
    monkeypatch.setenv("PG_DATAGEN_NUM_USERS", "7")
    assert postgres_cli.read_sizes(3).users == 21


def test_bad_period_names_the_key(monkeypatch, capsys):
    monkeypatch.setenv("KAFKA_DATAGEN_PERIOD_SECS", "soon")
    assert kafka_cli.main(["--count", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "KAFKA_DATAGEN_PERIOD_SECS" in err


@pytest.mark.parametrize("argv", [["--count", "-1"], ["--interval", "-2"], ["--count", "x"]])
def test_bad_kafka_arguments_are_usage_errors(argv):
    with pytest.raises(SystemExit) as exit_:
        kafka_cli.main(argv)
    assert exit_.value.code == 2


def test_publisher_retries_an_unreachable_broker_with_backoff_until_stopped():
    stop = threading.Event()
    warnings: list[str] = []

    class StopOnSecondRetry(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())
            if len(warnings) == 2:
                stop.set()

    handler = StopOnSecondRetry(logging.WARNING)
    logging.getLogger("datagen.kafka").addHandler(handler)
    publisher = Publisher(f"127.0.0.1:{closed_port()}", "t", stop,
                          settings={"bootstrap_timeout_ms": 300})
    try:
        with pytest.raises(Stopped):
            publisher.connect()
    finally:
        logging.getLogger("datagen.kafka").removeHandler(handler)
    assert "unreachable" in warnings[0] and "retrying in 1 s" in warnings[0]
    assert "retrying in 2 s" in warnings[1]
