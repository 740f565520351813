"""User-registration events for Kafka: JSON values keyed by e-mail, generated in batches.

Names, phones and loyalty tiers are drawn for a whole batch at once (numpy over Faker's name
tables), so producing an event costs one dict and one `json.dumps`. E-mails end in `-<token>`
where the token is the run's tag (from the seed) and the event's number, so they are unique
within a run and never equal a `datagen.postgres` e-mail (those end in the user id).

Example:
    >>> stream = events(seed=1)
    >>> key, value = next(stream)
    >>> event = json.loads(value)
    >>> sorted(event) == sorted(EVENT_SCHEMA["required"])
    True
    >>> key == event["email"].encode()
    True
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import chain

import numpy as np

from datagen import people
from datagen.shop import LOYALTY_STATUSES, now

EVENT_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "user registration event",
    "type": "object",
    "required": ["first_name", "last_name", "email", "phone", "registration_date", "loyalty_status"],
    "properties": {
        "first_name": {"type": "string", "minLength": 1, "maxLength": 100},
        "last_name": {"type": "string", "minLength": 1, "maxLength": 100},
        "email": {"type": "string", "maxLength": 255, "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"},
        "phone": {"type": "string", "minLength": 1, "maxLength": 50},
        "registration_date": {
            "type": "string", "format": "date-time",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"},
        "loyalty_status": {"enum": list(LOYALTY_STATUSES)},
    },
}
"""JSON Schema of an event; extra fields are allowed by the contract."""

BATCH = 2048
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


Clock = Callable[[int, int], list[str]]
"""clock(first, count): ISO-8601 registration times of events first .. first + count - 1."""


def events(seed: int, clock: Clock | None = None, batch: int = BATCH) -> Iterator[tuple[bytes, bytes]]:
    """Endless (key, value) pairs: the e-mail as key, the JSON event as value.

    Args:
        seed: picks the content; the same seed gives the same events.
        clock: registration times; by default `seeded_clock` (reproducible), `wall_clock`
            for the real time at which each batch is drawn.
        batch: how many events to draw at once (a live stream draws small batches).
    """
    return chain.from_iterable(event_batches(seed, clock, batch))


def event_batches(seed: int, clock: Clock | None = None,
                  batch: int = BATCH) -> Iterator[list[tuple[bytes, bytes]]]:
    """The same events as `events`, a list of `batch` (key, value) pairs at a time."""
    rng = np.random.default_rng([seed, 5])
    tag = "".join(_BASE36[d] for d in rng.integers(0, 36, 4))
    clock = clock or seeded_clock(seed)
    n = 0
    while True:
        registered = clock(n, batch)
        first, last = people.names(batch, rng)
        suffixes = [f"-{tag}{_base36(i)}" for i in range(n, n + batch)]
        emails = people.emails(first, last, suffixes, rng).tolist()
        phones = people.phones(batch, rng).tolist()
        loyalty = np.array(LOYALTY_STATUSES, dtype=object)[
            rng.choice(3, batch, p=[0.1, 0.3, 0.6])].tolist()
        yield [(email.encode(), json.dumps({
                    "first_name": first_name,
                    "last_name": last_name,
                    "email": email,
                    "phone": phone,
                    "registration_date": registration,
                    "loyalty_status": status,
                }).encode())
               for first_name, last_name, email, phone, registration, status in zip(
                   first.tolist(), last.tolist(), emails, phones, registered, loyalty)]
        n += batch


def seeded_clock(seed: int) -> Clock:
    """Event n registers n seconds after the seed's "now" (UTC): reproducible timestamps."""
    start = now(seed)

    def clock(first: int, count: int) -> list[str]:
        moments = start + np.arange(first, first + count).astype("timedelta64[s]")
        return [f"{moment}Z" for moment in np.datetime_as_string(moments, unit="s").tolist()]
    return clock


def wall_clock(first: int, count: int) -> list[str]:
    """The current UTC time for every event of the batch: a live stream's registration times."""
    return [datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")] * count


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = _BASE36[digit] + digits
        if not number:
            return digits
