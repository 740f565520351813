"""`python -m runner run <pipeline>`: validate, start one SparkSession, register sources, run the
files, check, and publish everything at once.

Illustration (needs the platform's services):

    summary = run_pipeline(load_pipeline("replicate"))
    summary.rows["users"]    # 5000
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace

from runner import config
from runner.engine import sources
from runner.engine.execute import execute
from runner.engine.session import spark_session
from runner.engine.verify import SourceSide, verify_copy
from runner.errors import Busy, InvalidPipeline, RunnerError, Unreachable, is_unreachable, one_line
from runner.model.flow import Flow, Read, pipeline_flow
from runner.model.pipeline import Pipeline, SqlFile
from runner.model.validate import validate
from runner.targets.base import Gap, Offset, Target, target_for

log = logging.getLogger("runner")


@dataclass
class Summary:
    pipeline: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    offsets: list[Offset] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    backlog: int = 0  # Kafka records left for the next run (a batch is at most max_events_per_run)


def check_valid(pipeline: Pipeline) -> None:
    # The run's own session parses every file and names file:line, so no parser JVM here.
    problems = validate(pipeline, strict=False)
    if problems:
        raise InvalidPipeline("\n".join(map(str, problems)) + f"\n{len(problems)} problem(s): nothing was run")


@contextmanager
def failing_as(what: str, connection: config.Connection):
    """Turn a driver's error into the runner's: unreachable (exit 3, worth a retry) or failed
    (exit 1), each saying what failed and where."""
    try:
        yield
    except RunnerError:
        raise
    except ConnectionError as error:  # raised by config.Connection.connect, naming host and port
        raise Unreachable(f"{what}: {error}") from None
    except Exception as error:
        if is_unreachable(error):
            raise Unreachable(f"{what}: cannot reach {connection.kind} at {connection.address}: "
                              f"{one_line(error)}") from None
        raise RunnerError(f"{what} failed ({connection.kind} at {connection.address}): {one_line(error)}") from None


class Reader:
    """The DataFrame of each read that comes from a connection: a source table or topic, a
    published table of another connection, or a staged copy of this run."""

    def __init__(self, spark, flow: Flow, target: Target):
        self.spark = spark
        self.settings = flow.pipeline.settings
        self.target = target
        self.offsets: list[Offset] = []
        self.gaps: list[Gap] = []
        self.backlog = 0
        self.snapshot: sources.Snapshot | None = None  # the source database as of the run's start

    def __call__(self, read: Read):
        if read.kind == "source" and self.settings.source == "kafka":
            return self._kafka(read.table)
        if read.kind == "staged":
            connection, table = self.target.connection, self.target.staging_name(read.table)
        else:
            connection, table = config.connection(read.connection), read.table
        snapshot = self.snapshot if read.kind == "source" else None
        with failing_as(f"reading {read.name} (database {connection.database})", connection):
            return sources.jdbc_table(self.spark, connection, table, snapshot)

    def weight(self, flow: Flow):
        """How much each step reads, in bytes of the database tables it reads (their catalogs'
        sizes): the executor starts the heaviest first. Best effort: without sizes, file order."""
        tables: dict[str, set[str]] = {}
        for step in flow.steps:
            for read in step.reads:
                if read.kind in ("source", "external") and read.connection != "kafka":
                    tables.setdefault(read.connection, set()).add(read.table)
        try:
            sizes = {(name, table): size for name, names in tables.items()
                     for table, size in sources.table_bytes(config.connection(name), sorted(names)).items()}
        except Exception as error:  # noqa: BLE001 - only the order of independent files depends on it
            log.debug("table sizes unknown (%s): files start in file order", one_line(error))
            return None
        return lambda step: sum(sizes.get((read.connection, read.table), 0) for read in step.reads)

    @contextmanager
    def source_snapshot(self):
        """Every source table read in one snapshot of a PostgreSQL source, held for the run: the
        tables are consistent with each other, and a verified copy is compared with exactly the
        rows it was made from."""
        if self.settings.source != "postgresql":
            yield
            return
        connection = config.connection("postgresql")
        with failing_as(f"opening a snapshot of {connection.kind} (database {connection.database})", connection):
            snapshot = sources.Snapshot(connection).__enter__()
        self.snapshot = snapshot
        try:
            yield
        finally:
            self.snapshot = None
            snapshot.__exit__()

    def _kafka(self, topic: str):
        connection, consumer = config.connection("kafka"), self.settings.consumer
        with failing_as(f"reading Kafka topic {topic!r}", connection):
            try:
                batch = sources.kafka_batch(connection, topic, self.target.stored_offsets(consumer, topic),
                                            self.settings.max_events_per_run)
            except LookupError as error:
                raise RunnerError(str(error)) from None
        log.info("%s: %d new record(s) in %d partition(s)%s", topic, batch.size, len(batch.end),
                 f", {batch.backlog} left for the next run" if batch.backlog else "")
        self.offsets = [Offset(consumer, topic, partition, batch.topic_id, offset, batch.epochs[partition])
                        for partition, offset in sorted(batch.end.items())]
        self.gaps = [Gap(consumer, topic, batch.topic_id, gap.partition, gap.first_offset, gap.last_offset,
                         gap.reason) for gap in batch.gaps]
        self.backlog = batch.backlog
        return sources.kafka_topic(self.spark, connection, batch, group=f"runner-{consumer}")

    @contextmanager
    def kafka_reachable(self):
        """Spark reads the topic later, in the jobs of the files: a broker lost by then is exit 3
        too, naming the broker."""
        try:
            yield
        except RunnerError:
            raise
        except Exception as error:
            if self.settings.source != "kafka" or not is_unreachable(error):
                raise
            connection = config.connection("kafka")
            raise Unreachable(f"reading Kafka topic {self.settings.topic!r}: cannot reach kafka at "
                              f"{connection.address}: {one_line(error)}") from None


def run_pipeline(pipeline: Pipeline, spark=None, max_workers: int = 4, select: Sequence[str] = ()) -> Summary:
    """One complete run (of the `select`ed files and what they need, see `Flow.select`); raises
    a RunnerError subclass with a one-line cause on failure."""
    check_valid(pipeline)
    started = time.monotonic()
    flow = pipeline_flow(pipeline)
    if select:
        flow = flow.select(select)
        _check_selection_publishable(flow)
    target = target_for(config.connection(pipeline.settings.target), pipeline.name)
    # The bounded waits of a publish: the whole budget, and each attempt's lock wait (readers
    # queue behind a waiting swap for that long at most).
    target.publish_timeout = pipeline.settings.publish_timeout or config.env_float(
        "RUNNER_PUBLISH_TIMEOUT", target.publish_timeout)
    target.lock_wait = max(1, config.env_int("RUNNER_SWAP_LOCK_WAIT", target.lock_wait))
    try:
        with failing_as(f"locking pipeline {pipeline.name}", target.connection):
            target.lock()
    except RuntimeError as error:
        raise Busy(str(error)) from None
    try:
        spark = spark or spark_session(pipeline.name)
        reader = Reader(spark, flow, target)

        def write(sql_file: SqlFile, frame) -> int:
            step = steps[sql_file.name]
            verifying = f"{sql_file.path}: verifying {target.connection.name}.{sql_file.target} against " + (
                step.copied.label if sql_file.verify else "")
            with ExitStack() as stack:
                if sql_file.verify:
                    # The source's side reads the snapshot the copy is made from: computed while
                    # the copy is written, so only the staged side is waited for afterwards.
                    with failing_as(verifying, config.connection(step.copied.connection)):
                        source = stack.enter_context(SourceSide(step, frame.schema, reader.snapshot))
                with failing_as(f"{sql_file.path}: writing {target.connection.kind}.{sql_file.target}",
                                target.connection):
                    target.prepare_staging(sql_file.target, sql_file.mode, sql_file.keys, frame.schema,
                                           sql_file.declared_sizes())
                    rows = target.write_staging(sql_file.target, frame)
                if sql_file.verify:
                    with failing_as(verifying, config.connection(step.copied.connection)):
                        verify_copy(step, frame.schema, target, reader.snapshot, source)
            return rows

        steps = {step.file.name: step for step in flow.steps}
        with reader.kafka_reachable(), reader.source_snapshot():
            execute(spark, flow, reader, write, max_workers=max_workers, weight=reader.weight(flow))
        _drop_unpublished(target, flow)
        publishing = time.monotonic()
        with failing_as("publishing (the published tables are unchanged)", target.connection):
            target.publish(reader.offsets + reader.gaps)
        log.info("%s: publish took %.1fs", pipeline.name, time.monotonic() - publishing)
        summary = Summary(pipeline.name, {t: s.rows for t, s in target.staged.items()},
                          time.monotonic() - started, reader.offsets, reader.gaps, reader.backlog)
        log.info("%s: published %s in %.1fs", pipeline.name,
                 ", ".join(f"{t} ({n} rows)" for t, n in summary.rows.items()) or "nothing", summary.seconds)
        return summary
    except BaseException:
        target.drop_staging()
        raise
    finally:
        target.unlock()


def _check_selection_publishable(flow: Flow) -> None:
    """A Kafka-fed pipeline publishes its consumed offsets with all of its tables at once: a
    --select that publishes only some of them would lose or repeat events, so it is refused."""
    settings = flow.pipeline.settings
    unselected = [step.file.name for step in pipeline_flow(flow.pipeline).steps
                  if step.writes and step.index not in flow.selected]
    if settings.source == "kafka" and unselected:
        raise InvalidPipeline(f"--select: pipeline {flow.pipeline.name} reads Kafka topic {settings.topic!r}, whose "
                              f"offsets are published with all of its tables at once; select {', '.join(unselected)} "
                              "too, or run the whole pipeline: publishing only some would lose or repeat events")


def _drop_unpublished(target: Target, flow: Flow) -> None:
    """--select: a result computed only because a selected file or check reads it was staged
    like any other (checks read staged copies); its staging table is dropped, not published."""
    published = {table for _, table in flow.writes()}
    unpublished = {name: item for name, item in target.staged.items() if name not in published}
    if unpublished:
        target.staged = {name: item for name, item in target.staged.items() if name in published}
        replace(target, staged=unpublished).drop_staging()


def follow(pipeline: Pipeline, every: float, until_drained: bool = False) -> None:
    """Run again and again on one SparkSession until SIGTERM or Ctrl-C: back to back while a
    Kafka source has a backlog (each run reads at most max_events_per_run), else `every` seconds
    apart. `until_drained` stops once a run leaves no backlog."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    spark = spark_session(pipeline.name, long_lived=True)
    while not stop.is_set():
        summary = run_pipeline(pipeline, spark)
        if summary.backlog:
            continue
        if until_drained:
            break
        stop.wait(every)
    log.info("%s: stopped following", pipeline.name)
