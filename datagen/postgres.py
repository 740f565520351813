"""Fill the PostgreSQL source tables with a realistic shop: `python -m datagen.postgres`.

Sizes come from `.env` (PG_DATAGEN_NUM_*; the environment wins), `--scale K` multiplies them
and `--seed N` picks the data (the same seed gives the same rows). Tables that already hold
rows are left alone, so the command can run any number of times.

Example:
    $ python -m datagen.postgres                 # the configured sizes, seed 42
    $ python -m datagen.postgres --scale 10 --seed 7

Exit codes: 0 done (or nothing to do), 1 the load failed or PostgreSQL rejected the login or the
database, 2 bad configuration or usage, 3 PostgreSQL unreachable.
"""

from __future__ import annotations

import argparse
import sys
import time

import psycopg2

from datagen.load import LoadError, Result, fill
from datagen.progress import Progress
from datagen.shop import SIZE_KEYS, InconsistentSizes, Sizes, check_sizes
from runner import config
from runner.config import ConfigError
from runner.errors import RunnerError

DEFAULT_SEED = 42
"""Without --seed every run generates the same shop."""

PROG = "python -m datagen.postgres"


def read_sizes(scale: int = 1) -> Sizes:
    """The configured sizes (PG_DATAGEN_NUM_*) times `scale`; ConfigError names a bad key."""
    sizes = Sizes(**{field: config.env_int(key) for field, key in SIZE_KEYS.items()})
    return sizes.scaled(scale)


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def parser() -> argparse.ArgumentParser:
    """The command line of `python -m datagen.postgres`."""
    p = argparse.ArgumentParser(
        prog=PROG, description="Fill the empty PostgreSQL source tables with a generated shop "
        "(sizes from PG_DATAGEN_NUM_* in .env); tables that hold rows are left alone.")
    p.add_argument("--scale", type=positive_int, default=1, metavar="K",
                   help="multiply every configured size by K (default 1)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="N",
                   help=f"random seed: the same seed gives the same rows (default {DEFAULT_SEED})")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the generator; returns the exit code."""
    args = parser().parse_args(argv)
    try:
        sizes = read_sizes(args.scale)
        check_sizes(sizes)
        target = config.connection("postgresql")
    except (ConfigError, InconsistentSizes) as error:
        return _fail(error, 2)
    try:
        db = target.connect()
    except RunnerError as error:  # unreachable: 3, worth a retry; a rejected login or database: 1
        return _fail(error, error.exit_code)

    started = time.perf_counter()
    try:
        with Progress() as progress:
            result = fill(db, sizes, args.seed, progress)
    except LoadError as error:
        unreachable = isinstance(error.__cause__, psycopg2.OperationalError) and db.closed
        return _fail(error, 3 if unreachable else 1)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; every table is complete or empty, rerun to finish",
              file=sys.stderr)
        return 130
    finally:
        db.close()
    print(summary(result, target.schema, target.address, time.perf_counter() - started), flush=True)
    return 0


def summary(result: Result, schema: str, address: str, seconds: float) -> str:
    """The closing line of a run."""
    where = f"schema {schema} at {address}"
    if not result.loaded:
        return f"{PROG}: nothing to do, every table of {where} already holds rows"
    return (f"{PROG}: loaded {result.rows} rows into {len(result.loaded)} table(s) of {where} "
            f"in {seconds:.2f} s (generate {result.generate_seconds:.2f} s, "
            f"encode {result.encode_seconds:.2f} s, copy {result.copy_seconds:.2f} s)")


def _fail(error: BaseException, code: int) -> int:
    print(f"{PROG}: error: {error}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
