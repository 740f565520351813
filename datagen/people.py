"""People-like values in bulk: names with real-world frequencies, unique e-mails, phones.

Calling Faker per value costs about 100 µs; its data is what makes names realistic, so its
weighted en_US name tables and free e-mail domains are read once and sampled with numpy.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> first, last = names(2, rng)
    >>> emails(first, last, ["1", "2"], rng)[0].count("@")
    1
"""

from __future__ import annotations

import unicodedata
from functools import cache, lru_cache

import numpy as np
from faker.providers.internet.en_US import Provider as _Internet
from faker.providers.person.en_US import Provider as _Person

_PHONE_FORMATS = (
    "{a}-{e}-{l}", "({a}){e}-{l}", "{a}.{e}.{l}", "+1-{a}-{e}-{l}", "{a}-{e}-{l}x{x}",
)


@cache
def _weighted(table: str) -> tuple[np.ndarray, np.ndarray]:
    values = getattr(_Person, table)
    names = np.array(list(values), dtype=object)
    weights = np.array(list(values.values()), dtype=float)
    return names, weights / weights.sum()


def names(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` first and last names drawn with the frequencies of Faker's en_US tables."""
    first, first_p = _weighted("first_names")
    last, last_p = _weighted("last_names")
    return first[rng.choice(len(first), count, p=first_p)], last[rng.choice(len(last), count, p=last_p)]


def brands(count: int, rng: np.random.Generator) -> list[str]:
    """`count` brand names (family names, as many brands are)."""
    last, _ = _weighted("last_names")
    return last[rng.integers(0, len(last), count)].tolist()


def emails(first: np.ndarray, last: np.ndarray, suffixes: list[str],
           rng: np.random.Generator) -> np.ndarray:
    """E-mails `<name pattern><suffix>@<free domain>`; unique when the suffixes are.

    The name part holds only letters and dots, so a suffix that starts with a digit or a `-`
    keeps e-mails with different suffixes apart.
    """
    domains = _Internet.free_email_domains
    pattern = rng.integers(0, 4, len(first))
    domain = rng.integers(0, len(domains), len(first))
    out = np.empty(len(first), dtype=object)
    for i, (given, family, suffix) in enumerate(zip(first.tolist(), last.tolist(), suffixes)):
        given, family = _ascii(given), _ascii(family)
        name = (f"{given}.{family}", f"{given}{family}", f"{given[0]}{family}", f"{given}")[pattern[i]]
        out[i] = f"{name}{suffix}@{domains[domain[i]]}"
    return out


def phones(count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` US phone numbers in the formats Faker's en_US locale uses."""
    area = rng.integers(201, 990, count).tolist()
    exchange = rng.integers(200, 1000, count).tolist()
    line = rng.integers(0, 10000, count).tolist()
    extension = rng.integers(100, 10000, count).tolist()
    fmt = rng.integers(0, len(_PHONE_FORMATS), count).tolist()
    out = np.empty(count, dtype=object)
    for i in range(count):
        out[i] = _PHONE_FORMATS[fmt[i]].format(a=area[i], e=exchange[i], l=f"{line[i]:04d}",
                                               x=extension[i])
    return out


@lru_cache(maxsize=4096)
def _ascii(name: str) -> str:
    """Lower-case letters only, accents dropped: what an e-mail's local part would use."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalpha()) or "user"
