"""Verify a staged copy against the table it copies, inside both databases (`-- verify: checksum`).

Each side's row count and checksum are computed by its own database (targets/fingerprint.py);
only those numbers cross the wire. The source side reads the run's snapshot when there is one,
so it sees exactly the rows the copy was made from, whatever was committed since; that is also
why it can be computed while the copy is still being written (`SourceSide`, started before the
write), leaving only the copy's side to wait for once the rows are staged. A copy with a single
integer key is fingerprinted in key ranges on parallel connections, summed.

Illustration (needs the databases):

    verify_copy(step, frame.schema, target, snapshot)   # raises CopyDiffers naming the table
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor

from runner import config
from runner.engine.execute import CheckFailed
from runner.engine.sources import Snapshot
from runner.model.flow import Step
from runner.targets import fingerprint
from runner.targets.base import Target

log = logging.getLogger("runner")

# Key ranges each side's checksum is split into, one connection each (two cores, and each
# database computes one query on one core).
PARALLEL_RANGES = 2


class CopyDiffers(CheckFailed):
    """The staged copy is not row for row the table it copies."""


def _range_key(step: Step, columns: list[fingerprint.Column]) -> str | None:
    """The copy's column to split the checksum on: its one key, when that is an integer."""
    keys = step.file.keys
    kinds = {name: kind for name, kind, _ in columns}
    return keys[0] if len(keys) == 1 and kinds.get(keys[0]) == "int" else None


def _fingerprint(connect, dialect: str, table: str, columns: list[fingerprint.Column], key: str | None,
                 pool: ThreadPoolExecutor, connections: list) -> tuple[int, int]:
    """(rows, checksum) of `table`, in key ranges on parallel connections when `key` is given."""
    def part(where: str) -> tuple[int, int]:
        db = connect()
        connections.append(db)
        try:
            return fingerprint.fingerprint(db, dialect, table, columns, where)
        finally:
            db.close()

    conditions = [""]
    if key and PARALLEL_RANGES > 1:
        db = connect()
        try:
            bounds = fingerprint.key_bounds(db, dialect, table, key)
        finally:
            db.close()
        if bounds:
            conditions = fingerprint.key_ranges(dialect, key, *bounds, PARALLEL_RANGES)
    results = [future.result() for future in [pool.submit(part, where) for where in conditions]]
    return sum(rows for rows, _ in results), sum(checksum for _, checksum in results)


class SourceSide:
    """The source table's fingerprint, computed in the background from the moment it is made
    (in the run's snapshot: the rows the copy is made from). `close()` cancels it if unused.

        with SourceSide(step, schema, snapshot) as source:
            ...write the copy...
            verify_copy(step, schema, target, snapshot, source)
    """

    def __init__(self, step: Step, schema, snapshot: Snapshot | None):
        copied = step.copied
        self.label = copied.label
        self.columns = fingerprint.columns_of(schema)
        connection = config.connection(copied.connection)
        in_snapshot = snapshot is not None and copied.kind == "source" and connection.kind == "postgresql"
        connect = snapshot.connect if in_snapshot else lambda: fingerprint.utc_connection(connection)
        self._connections: list = []
        self._pool = ThreadPoolExecutor(1 + PARALLEL_RANGES, thread_name_prefix="verify-source")
        self._result: Future = self._pool.submit(
            _fingerprint, connect, connection.kind, copied.table, self.columns, _range_key(step, self.columns),
            self._pool, self._connections)

    def result(self) -> tuple[int, int]:
        return self._result.result()

    def close(self) -> None:
        if not self._result.done():
            for db in list(self._connections):  # a run that failed does not wait for its checksum
                try:
                    db.cancel()
                except Exception:  # noqa: BLE001 - closed already, or a driver without cancel
                    pass
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> SourceSide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def verify_copy(step: Step, schema, target: Target, snapshot: Snapshot | None,
                source: SourceSide | None = None) -> None:
    """Compare the staged result of `step` with the table it copies; raise CopyDiffers if they
    differ. `source`: the source's side, already under way (else it is computed now)."""
    if source is None:
        with SourceSide(step, schema, snapshot) as source:
            return verify_copy(step, schema, target, snapshot, source)
    sql_file = step.file
    started = time.monotonic()
    columns = fingerprint.columns_of(schema)
    with ThreadPoolExecutor(PARALLEL_RANGES, thread_name_prefix="verify-copy") as pool:
        copy_rows, copy_sum = _fingerprint(lambda: fingerprint.utc_connection(target.connection), target.dialect,
                                           target.staging_name(sql_file.target), columns,
                                           _range_key(step, columns), pool, [])
    source_rows, source_sum = source.result()
    published = f"{target.connection.name}.{sql_file.target}"
    if source_rows != copy_rows:
        problem = f"row count differs: {copy_rows} staged, {source_rows} in {source.label}"
    elif source_sum != copy_sum:
        problem = f"checksum differs over {copy_rows} rows: some value was changed on the way"
    else:
        log.info("%-34s %-58s %6.1fs", sql_file.name,
                 f"verified {published}: {copy_rows} rows equal to {source.label}", time.monotonic() - started)
        return
    raise CopyDiffers(f"{sql_file.path}: verify checksum failed for {published}: {problem}; nothing was published")
