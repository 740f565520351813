"""Kafka events are valid against their schema, keyed by a unique e-mail, and reproducible."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import islice

import jsonschema
import pytest

from datagen.events import EVENT_SCHEMA, events, wall_clock
from datagen.shop import Sizes, generate_shop

validator = jsonschema.Draft202012Validator(
    EVENT_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def take(n: int, seed: int = 1, **kwargs) -> list[tuple[bytes, bytes]]:
    return list(islice(events(seed, **kwargs), n))


def test_every_event_is_valid_against_the_schema():
    for _, value in take(3000):
        validator.validate(json.loads(value))


def test_schema_rejects_an_event_without_email():
    event = json.loads(take(1)[0][1])
    del event["email"]
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(event)


def test_key_is_the_events_email():
    for key, value in take(100):
        assert key.decode() == json.loads(value)["email"]


def test_emails_are_unique_across_batches():
    keys = [key for key, _ in take(10_000, batch=512)]
    assert len(set(keys)) == len(keys)


def test_same_seed_gives_the_same_events():
    assert take(500, seed=9) == take(500, seed=9)


def test_other_seed_gives_other_events():
    assert take(50, seed=9) != take(50, seed=10)


def test_seeded_registration_times_advance_a_second_per_event():
    times = [json.loads(value)["registration_date"] for _, value in take(3)]
    parsed = [datetime.fromisoformat(t) for t in times]
    assert parsed[1] - parsed[0] == timedelta(seconds=1)


def test_live_registration_time_is_now():
    before = datetime.now(UTC).replace(microsecond=0)
    moment = datetime.fromisoformat(json.loads(take(1, clock=wall_clock, batch=1)[0][1])
                                    ["registration_date"])
    assert before <= moment <= datetime.now(UTC)


def test_event_emails_never_collide_with_generated_users():
    users = next(t for t in generate_shop(Sizes(0, 2000, 0, 0, 0), 1) if t.name == "users")
    assert not set(users["email"].tolist()) & {key.decode() for key, _ in take(2000)}
    assert all("-" not in email.split("@")[0] for email in users["email"].tolist())
