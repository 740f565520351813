"""`python -m runner run <pipeline>`: validate, start one SparkSession, register sources, run the
files, check, and publish everything at once.

Example:
    >>> summary = run_pipeline(load_pipeline("replicate"))
    >>> summary.rows["users"]
    5000
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field

from runner import config
from runner.engine import sources
from runner.errors import Busy, InvalidPipeline, RunnerError, Unreachable, is_unreachable, one_line
from runner.engine.execute import execute
from runner.model.pipeline import Pipeline, SqlFile
from runner.targets.base import Target
from runner.engine.session import spark_session
from runner.model.validate import validate

log = logging.getLogger("runner")


@dataclass
class Summary:
    pipeline: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    offsets: list[tuple[str, int, int]] = field(default_factory=list)


def check_valid(pipeline: Pipeline) -> None:
    problems = validate(pipeline)
    if problems:
        raise InvalidPipeline("\n".join(map(str, problems)) + f"\n{len(problems)} problem(s): nothing was run")


class Sources:
    """Resolves each table a file reads to a DataFrame, from the right connection."""

    def __init__(self, spark, pipeline: Pipeline, target: Target):
        self.spark = spark
        self.pipeline = pipeline
        self.target = target
        self.offsets: list[tuple[str, int, int]] = []
        self.settings = pipeline.settings

    def __call__(self, table: str):
        connection_name, _, name = table.rpartition(".")
        if not connection_name:
            if self.settings.source == "kafka":
                return self._kafka(name)
            return self._jdbc(config.connection(self.settings.source), name)
        if connection_name == self.settings.target and name in self.target.staged:
            return self._jdbc(self.target.connection, self.target.staging_name(name))
        return self._jdbc(config.connection(connection_name), name)

    def _jdbc(self, connection: config.Connection, table: str):
        try:
            return sources.jdbc_table(self.spark, connection, table)
        except ConnectionError as error:
            raise Unreachable(str(error)) from None
        except Exception as error:
            if is_unreachable(error):
                raise Unreachable(f"cannot reach {connection.kind} at {connection.address}: {one_line(error)}") from None
            raise RunnerError(f"cannot read {table} from {connection.kind} at {connection.address} "
                              f"(database {connection.database}): {one_line(error)}") from None

    def _kafka(self, topic: str):
        connection = config.connection("kafka")
        try:
            start, end = sources.kafka_offsets(connection, topic, self.target.stored_offsets(topic))
        except LookupError as error:
            raise RunnerError(str(error)) from None
        except ConnectionError as error:
            raise Unreachable(str(error)) from None
        except Exception as error:
            if is_unreachable(error):
                raise Unreachable(f"cannot reach Kafka at {connection.servers}: {one_line(error)}") from None
            raise
        pending = sum(end[p] - start[p] for p in end)
        log.info("%s: %d new record(s) in %d partition(s)", topic, pending, len(end))
        self.offsets = [(topic, partition, offset) for partition, offset in sorted(end.items())]
        return sources.kafka_topic(self.spark, connection, topic, start, end)


def run_pipeline(pipeline: Pipeline, spark=None, max_workers: int = 4) -> Summary:
    """One complete run; raises a RunnerError subclass with a one-line cause on failure."""
    check_valid(pipeline)
    started = time.monotonic()
    target = Target(config.connection(pipeline.settings.target), pipeline.name)
    try:
        target.lock()
    except ConnectionError as error:
        raise Unreachable(str(error)) from None
    except RuntimeError as error:
        raise Busy(str(error)) from None
    try:
        spark = spark or spark_session(pipeline.name)
        resolve = Sources(spark, pipeline, target)

        def write(sql_file: SqlFile, frame) -> int:
            try:
                target.prepare_staging(sql_file.target, sql_file.mode, sql_file.keys, frame.schema,
                                       sql_file.declared_sizes())
                return target.write_staging(sql_file.target, frame)
            except RunnerError:
                raise
            except Exception as error:
                if is_unreachable(error):
                    raise Unreachable(f"{sql_file.path}: cannot reach {target.connection.kind} at "
                                      f"{target.connection.address}: {one_line(error)}") from None
                raise RunnerError(f"{sql_file.path}: writing {target.connection.kind}.{sql_file.target} failed: "
                                  f"{one_line(error)}") from None

        execute(spark, pipeline, resolve, write, max_workers=max_workers)
        try:
            target.publish(resolve.offsets)
        except Exception as error:
            kind = Unreachable if is_unreachable(error) else RunnerError
            raise kind(f"publishing to {target.connection.kind} at {target.connection.address} failed, "
                       f"the published tables are unchanged: {one_line(error)}") from None
        summary = Summary(pipeline.name, {t: s.rows for t, s in target.staged.items()},
                          time.monotonic() - started, resolve.offsets)
        log.info("%s: published %s in %.1fs", pipeline.name,
                 ", ".join(f"{t} ({n} rows)" for t, n in summary.rows.items()) or "nothing", summary.seconds)
        return summary
    except BaseException:
        target.drop_staging()
        raise
    finally:
        target.unlock()


def follow(pipeline: Pipeline, every: float) -> None:
    """Run again and again on one SparkSession, `every` seconds apart, until SIGTERM or Ctrl-C."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    spark = spark_session(pipeline.name, long_lived=True)
    while not stop.is_set():
        run_pipeline(pipeline, spark)
        stop.wait(every)
    log.info("%s: stopped following", pipeline.name)
