"""The names the runner gives tables in a target database, and how each dialect quotes a name.

Pure Python (no Spark), so that `validate` can check a target name against the same rules the
targets use to stage, swap and key it.

Example:
    >>> quote("mysql", "odd`name")
    '`odd``name`'
    >>> print(quote("postgresql", 'a"b'))
    "a""b"
    >>> derived_names("users")
    ['users', 'users__staging', 'users__old', 'users__next', 'users__staging_pkey', 'users_pkey']
    >>> target_name_problem("postgresql", "x" * 49) is None
    True
    >>> target_name_problem("postgresql", "runner_kafka_gaps").split(",")[0]
    "target 'runner_kafka_gaps' starts with 'runner_'"
"""

from __future__ import annotations

STAGING_SUFFIX = "__staging"
OLD_SUFFIX = "__old"
NEXT_SUFFIX = "__next"  # MySQL: the next version of an appended or merged table, renamed in
PKEY_SUFFIX = "_pkey"  # PostgreSQL's name of a table's primary-key index
# Every table the runner keeps for itself starts so (the stream's offsets, and the like).
RESERVED_PREFIX = "runner_"
OFFSETS_TABLE = f"{RESERVED_PREFIX}kafka_offsets"

# PostgreSQL silently cuts a longer identifier to 63 bytes (NAMEDATALEN - 1), so two long
# names can become one; MySQL refuses a table name over 64 characters.
MAX_NAME = {"postgresql": 63, "mysql": 64}

_QUOTE = {"mysql": "`", "postgresql": '"'}


def quote(dialect: str, name: str) -> str:
    """`name` as a quoted identifier of `dialect`: any quote character inside it is doubled."""
    if "\x00" in name:
        raise ValueError(f"identifier {name!r} contains a NUL character, which no database accepts")
    mark = _QUOTE["mysql" if dialect == "mysql" else "postgresql"]
    return f"{mark}{name.replace(mark, mark * 2)}{mark}"


def quote_qualified(dialect: str, *parts: str) -> str:
    """A dotted name, each part quoted: `"schema"."table"`."""
    return ".".join(quote(dialect, part) for part in parts if part)


def derived_names(target: str) -> list[str]:
    """Every name the runner creates for a target table: itself, its staging, old and next
    copies while publishing, and (PostgreSQL) the primary-key index of the staging table and the
    table."""
    staging = f"{target}{STAGING_SUFFIX}"
    return [target, staging, f"{target}{OLD_SUFFIX}", f"{target}{NEXT_SUFFIX}",
            f"{staging}{PKEY_SUFFIX}", f"{target}{PKEY_SUFFIX}"]


def _length(dialect: str, name: str) -> int:
    return len(name.encode()) if dialect == "postgresql" else len(name)


def target_name_problem(dialect: str, target: str) -> str | None:
    """Why `target` cannot be published to a `dialect` database, or None if it can."""
    if target.lower().startswith(RESERVED_PREFIX):
        return (f"target {target!r} starts with {RESERVED_PREFIX!r}, which is reserved for the runner's own "
                f"tables (such as {OFFSETS_TABLE}): choose another name")
    for suffix in (STAGING_SUFFIX, OLD_SUFFIX, NEXT_SUFFIX):
        if target.lower().endswith(suffix):
            return (f"target {target!r} ends with {suffix!r}, which the runner uses for the copies it swaps "
                    "while publishing: choose another name")
    limit = MAX_NAME.get(dialect)
    # MySQL names every primary key PRIMARY: only the tables count there.
    names = derived_names(target) if dialect == "postgresql" else derived_names(target)[:4]
    longest = max(names, key=lambda name: _length(dialect, name))
    if limit and _length(dialect, longest) > limit:
        room = limit - (_length(dialect, longest) - _length(dialect, target))
        unit, why = (("bytes", "PostgreSQL silently cuts longer names, so two of them could become one")
                     if dialect == "postgresql" else ("characters", "MySQL refuses longer names"))
        return (f"target {target!r} is too long for {dialect}: the runner's name {longest!r} would be "
                f"{_length(dialect, longest)} {unit}, over the limit of {limit} ({why}); "
                f"use at most {room} {unit}")
    return None
