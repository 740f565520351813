"""Run a pipeline's files on one SparkSession: register what each reads, run it, hand its result on.

Files that do not depend on each other run concurrently (Spark runs concurrent jobs in one
session); a file waits for the earlier files whose views or staged tables it reads. The same
`transform` serves real runs and the SQL unit tests, which give it fixture DataFrames.

Illustration (needs a SparkSession):

    frame = transform(spark, load_sql_file(path), sources={"orders": orders_df}.__getitem__)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass

from sqlglot import exp

from runner.errors import RunnerError, one_line, spark_error_line
from runner.model.flow import Flow, Read, Step
from runner.model.pipeline import Pipeline, SqlFile

log = logging.getLogger("runner")

CHECK_ROWS_SHOWN = 5


@dataclass
class Outcome:
    """What one file did."""

    file: SqlFile
    rows: int | None
    seconds: float


class CheckFailed(RunnerError):
    """A data-quality check returned offending rows."""


def view_name(table: str) -> str:
    """Spark view name of a table as the SQL names it: `mysql.users` -> `mysql__users`."""
    return table.replace(".", "__")


def executable_sql(sql_file: SqlFile) -> str:
    """The file's SQL with qualified tables renamed to their views; every other byte, and so
    every line number, stays as written."""
    spans = []
    for node in sql_file.tree.find_all(exp.Table) if sql_file.tree else ():
        db = node.args.get("db")
        start, end = (db.meta.get("start"), node.this.meta.get("end")) if db else (None, None)
        if start is not None and end is not None:
            spans.append((start, end + 1, view_name(f"{node.db}.{node.name}")))
    sql = sql_file.sql
    for start, end, replacement in sorted(spans, reverse=True):
        sql = sql[:start] + replacement + sql[end:]
    return sql


class Views:
    """Temp views of the session, each source registered once, on first use, thread-safely."""

    def __init__(self, spark):
        self.spark = spark
        self.registered: set[str] = set()
        self.lock = threading.Lock()
        self.table_locks: dict[str, threading.Lock] = {}

    def ensure(self, table: str, sources: Callable[[str], object]) -> None:
        # One lock per table: resolving a JDBC source (its key range, its schema over the
        # network) took 5-9 s on a busy 2-core machine, and under one lock for all tables
        # every file waited for every other file's sources.
        with self.lock:
            if table in self.registered:
                return
            table_lock = self.table_locks.setdefault(table, threading.Lock())
        with table_lock:
            with self.lock:
                if table in self.registered:
                    return
            frame = sources(table)
            with self.lock:
                frame.createOrReplaceTempView(view_name(table))
                self.registered.add(table)

    def forget(self, table: str) -> None:
        """Resolve `table` afresh on its next read (a staged copy now stands behind it)."""
        with self.lock:
            self.registered.discard(table)

    def publish_result(self, name: str, frame) -> None:
        """Later files read this file's result under its target name."""
        with self.lock:
            frame.createOrReplaceTempView(name)
            self.registered.add(name)


def transform(spark, sql_file: SqlFile, sources: Callable[[str], object], views: Views | None = None):
    """The result DataFrame of one file, its reads resolved through `sources`."""
    views = views or Views(spark)
    for table in sql_file.reads:
        views.ensure(table, sources)
    try:
        return spark.sql(executable_sql(sql_file))
    except Exception as error:  # Spark's parse and analysis errors
        line = spark_error_line(error) or 1
        raise RunnerError(f"{sql_file.path}:{line}: {one_line(error)}") from None


def check_rows(frame) -> list:
    return frame.limit(CHECK_ROWS_SHOWN + 1).collect()


def format_check_failure(sql_file: SqlFile, rows: list, what: str = "", noun: str = "row") -> str:
    """`check x failed: 2 offending row(s):` and the rows, at most CHECK_ROWS_SHOWN of them."""
    shown = "\n".join(f"    {row.asDict()}" for row in rows[:CHECK_ROWS_SHOWN])
    count = f"more than {CHECK_ROWS_SHOWN}" if len(rows) > CHECK_ROWS_SHOWN else str(len(rows))
    more = f" (showing the first {CHECK_ROWS_SHOWN})" if len(rows) > CHECK_ROWS_SHOWN else ""
    return f"{what or f'check {sql_file.target} failed'}: {count} offending {noun}(s){more}:\n{shown}"


def grain_violations(frame, keys: tuple[str, ...]) -> list:
    """Up to six keys of `frame` that break its grain: a key held by several rows, or a NULL key part."""
    from pyspark.sql import functions as F

    columns = [F.col(f"`{key}`") for key in keys]
    null_part = columns[0].isNull()
    for column in columns[1:]:
        null_part = null_part | column.isNull()
    return check_rows(frame.groupBy(*columns).agg(F.count(F.lit(1)).alias("rows"))
                      .where((F.col("rows") > 1) | null_part))


def written_on_its_grain(sql_file: SqlFile, frame, write: Callable[[SqlFile, object], int]) -> int:
    """Write a result; a result with keys that breaks them fails naming the offending keys.

    The grain is stated once, by the `keys` header: the staging table's primary key enforces it
    as rows load, at no cost to a good run. Only when a keyed write fails are its keys counted,
    so that the error shows which keys repeat or are NULL rather than the driver's message.
    """
    try:
        return write(sql_file, frame)
    except Exception:
        broken = grain_violations(frame, sql_file.keys) if sql_file.keys else []
        if broken:
            what = f"{sql_file.target} is not unique on its keys ({', '.join(sql_file.keys)}) or has a NULL key"
            raise CheckFailed(f"{sql_file.path}: {format_check_failure(sql_file, broken, what, 'key')}\n"
                              "nothing was published") from None
        raise


def started_in_order(steps: tuple[Step, ...], weight: Callable[[Step], float]) -> list[Step]:
    """The order to start `steps` in: the heaviest first among those whose dependencies have
    started, so that the longest file does not wait for a free worker behind short ones, and
    no step ever waits for one started after it (each waits in a worker of a bounded pool).

    >>> from types import SimpleNamespace as S
    >>> steps = (S(index=0, waits_for=()), S(index=1, waits_for=()), S(index=2, waits_for=(0,)))
    >>> [s.index for s in started_in_order(steps, lambda step: {0: 1, 1: 5, 2: 9}[step.index])]
    [1, 0, 2]
    """
    weights = {step.index: weight(step) for step in steps}
    waiting = {step.index: set(step.waits_for) & set(weights) for step in steps}
    by_index = {step.index: step for step in steps}
    order: list[Step] = []
    while waiting:
        ready = [index for index, needs in waiting.items() if not needs]
        chosen = min(ready, key=lambda index: (-weights[index], index))
        order.append(by_index[chosen])
        del waiting[chosen]
        for needs in waiting.values():
            needs.discard(chosen)
    return order


def execute(spark, flow: Flow, sources: Callable[[Read], object],
            write: Callable[[SqlFile, object], int], max_workers: int = 4,
            weight: Callable[[Step], float] | None = None) -> list[Outcome]:
    """Run every step of the flow, concurrently where independent; raise the first failure.
    `sources` gives the DataFrame of a read from a connection (source, external or staged);
    `weight`, how long a step is expected to take next to the others (heaviest started first;
    without it, file order)."""
    from pyspark import StorageLevel

    pipeline = flow.pipeline
    readers = flow.readers
    views = Views(spark)
    kept_frames = []  # results kept for later files, released when the run ends
    futures: dict[int, Future] = {}

    def keep(frame):
        # Computed now and kept (memory, then disk) as a checkpoint that later SQL reads
        # directly: a cached DataFrame is found again only by matching plans, which a CTE in
        # the reading file defeats, and its source would be read a second time.
        kept = frame.localCheckpoint(eager=True, storageLevel=StorageLevel.MEMORY_AND_DISK)
        kept_frames.append(kept)
        return kept

    def run_one(step: Step) -> Outcome:
        for dependency in step.waits_for:
            futures[dependency].result()
        sql_file, index = step.file, step.index
        started = time.monotonic()
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", sql_file.name)
        spark.sparkContext.setJobDescription(f"{pipeline.name}/{sql_file.name}")
        frame = transform(spark, sql_file, lambda name: sources(step.read(name)), views)
        rows: int | None = None
        if sql_file.mode == "check":
            offending = check_rows(frame)
            if offending:
                raise CheckFailed(f"{sql_file.path}: {format_check_failure(sql_file, offending)}")
        elif sql_file.mode == "view":
            # A view two later files read is computed once (one snapshot of its sources).
            views.publish_result(sql_file.target, keep(frame) if readers[index] > 1 else frame)
        else:
            if readers[index]:
                # Later files (checks) read this result: keep the rows written, one snapshot of
                # the source, instead of reading the source again.
                frame = keep(frame)
            rows = written_on_its_grain(sql_file, frame, write)
            views.publish_result(sql_file.target, frame)
            views.forget(f"{pipeline.settings.target}.{sql_file.target}")
        outcome = Outcome(sql_file, rows, time.monotonic() - started)
        log_outcome(pipeline, outcome)
        return outcome

    with _released(kept_frames), ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(pipeline.files))),
                                                  thread_name_prefix="sql") as pool:
        for step in started_in_order(flow.steps, weight) if weight else flow.steps:
            futures[step.index] = pool.submit(run_one, step)
        done, pending = wait(futures.values(), return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for index in sorted(futures):
            future = futures[index]
            if future.done() and not future.cancelled() and future.exception():
                spark.sparkContext.cancelAllJobs()
                raise future.exception()
        return [futures[i].result() for i in sorted(futures)]


@contextmanager
def _released(frames: list):
    """Unpersist the kept results when the run ends (a --follow session runs again and again)."""
    try:
        yield
    finally:
        for frame in frames:
            try:
                frame._jdf.queryExecution().analyzed().rdd().unpersist(False)
            except Exception:  # noqa: BLE001 - best effort: Spark's cleaner frees it later anyway
                pass


def log_outcome(pipeline: Pipeline, outcome: Outcome) -> None:
    sql_file = outcome.file
    if sql_file.mode == "check":
        what = "check passed"
    elif sql_file.mode == "view":
        what = f"view {sql_file.target}"
    else:
        what = f"{outcome.rows} rows staged for {pipeline.settings.target}.{sql_file.target} ({sql_file.mode})"
    log.info("%-34s %-58s %6.1fs", sql_file.name, what, outcome.seconds)
