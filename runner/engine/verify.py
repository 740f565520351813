"""Verify a staged copy against the table it copies, inside both databases (`-- verify: checksum`).

Each side's row count and checksum are computed by its own database (targets/fingerprint.py),
both at once; only those numbers cross the wire. The source side reads the run's snapshot when
there is one, so it sees exactly the rows the copy was made from, whatever was committed since.

Illustration (needs the databases):

    verify_copy(step, frame.schema, target, snapshot)   # raises CopyDiffers naming the table
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from runner import config
from runner.engine.execute import CheckFailed
from runner.engine.sources import Snapshot
from runner.model.flow import Step
from runner.targets import fingerprint
from runner.targets.base import Target

log = logging.getLogger("runner")


class CopyDiffers(CheckFailed):
    """The staged copy is not row for row the table it copies."""


def verify_copy(step: Step, schema, target: Target, snapshot: Snapshot | None) -> None:
    """Compare the staged result of `step` with the table it copies; raise CopyDiffers if they differ."""
    copied, sql_file = step.copied, step.file
    columns = fingerprint.columns_of(schema)
    source = config.connection(copied.connection)
    staging = target.staging_name(sql_file.target)
    started = time.monotonic()

    def side(connect, dialect: str, table: str) -> tuple[int, int]:
        db = connect()
        try:
            return fingerprint.fingerprint(db, dialect, table, columns)
        finally:
            db.close()

    in_snapshot = snapshot is not None and copied.kind == "source" and source.kind == "postgresql"
    with ThreadPoolExecutor(2, thread_name_prefix="verify") as pool:
        source_side = pool.submit(side, snapshot.connect if in_snapshot else lambda: fingerprint.utc_connection(source),
                                  source.kind, copied.table)
        copy_side = pool.submit(side, lambda: fingerprint.utc_connection(target.connection), target.dialect, staging)
        (source_rows, source_sum), (copy_rows, copy_sum) = source_side.result(), copy_side.result()
    published = f"{target.connection.name}.{sql_file.target}"
    if source_rows != copy_rows:
        problem = f"row count differs: {copy_rows} staged, {source_rows} in {copied.label}"
    elif source_sum != copy_sum:
        problem = f"checksum differs over {copy_rows} rows: some value was changed on the way"
    else:
        log.info("%-34s %-58s %6.1fs", sql_file.name,
                 f"verified {published}: {copy_rows} rows equal to {copied.label}", time.monotonic() - started)
        return
    raise CopyDiffers(f"{sql_file.path}: verify checksum failed for {published}: {problem}; nothing was published")
