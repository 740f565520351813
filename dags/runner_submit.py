"""The one task of every pipeline DAG: spark-submit the runner with the pipeline's directory name.

The runner's exit code decides what Airflow does with a failure: 3 (a database or broker is
unreachable) is transient and retried with exponential backoff; 1 (the run failed) and 2 (invalid
pipeline) would fail the same way again, so the task fails at once. Either way the task log ends
with the runner's one-line cause.

Example:
    >>> task = RunnerSubmitOperator(pipeline="marts", task_id="run")   # inside a DAG
    >>> task.application_args
    ['run', 'marts']
"""

from __future__ import annotations

import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from runner.errors import InvalidPipeline, RunnerError

ROOT = Path(__file__).resolve().parent.parent
RUNNER_ENTRY = ROOT / "runner" / "__main__.py"

# The runner's exit codes that a retry would not change; every other failure is retried.
NOT_RETRIED = {RunnerError.exit_code: "the run failed",
               InvalidPipeline.exit_code: "the pipeline or its configuration is invalid"}

# Transient failures: retried after 30-60s, 1-2min, 2-4min (Airflow jitters each doubled delay), then failed.
RETRIES = {
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    # Nothing hangs: a run that has not ended in an hour is killed (and retried). Every wait
    # inside a run is bounded too: a connect 10 s, the publish budget 120 s, a statement an hour.
    "execution_timeout": timedelta(hours=1),
}

_RETURN_CODE = re.compile(r"Error code is: (-?\d+)")
# Lines of the JVM's own logging (log4j's default pattern, structured JSON logging), Python and
# Java tracebacks and Spark's start-up banner: none of them is the runner's cause.
_NOISE = re.compile(
    r"^(\d{2,4}[/-]\d{2}[/-]\d{2}[ T]\d{2}:\d{2}:\d{2}\S*\s+(TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL)\b"
    r"|\{\"ts\"|Traceback |\s|WARNING: Using incubator|Using Spark's default log4j)"
)
_CAUSE = "error: "


def spark_jars() -> str | None:
    """The jar files in SPARK_JARS_DIR as spark-submit's comma list; None before `make up` made them.

    Passing them with --jars puts the JDBC drivers and the Kafka connector on the driver's
    classpath too: the runner's own `spark.jars` setting comes too late for a driver JVM that
    spark-submit has already started.
    """
    from runner.config import ConfigError
    from runner.engine.session import jar_files

    try:
        return ",".join(jar_files())
    except ConfigError:
        return None


def runner_cause(output: str) -> str | None:
    """The runner's cause in spark-submit's output: from its last `error: ` line on, without the
    JVM's log lines (a validation failure lists one file:line problem per line).

    Example:
        >>> runner_cause("26/01/01 10:00:00 INFO SparkContext: Running Spark\\n"
        ...              "error: sql/marts/020_x.sql:7: unknown column 'x'\\n"
        ...              "26/01/01 10:00:01 INFO ShutdownHookManager: Shutdown hook called")
        "sql/marts/020_x.sql:7: unknown column 'x'"
    """
    lines = [line.strip() for line in output.splitlines() if line.strip() and not _NOISE.match(line)]
    starts = [number for number, line in enumerate(lines) if line.startswith(_CAUSE)]
    if starts:
        cause = lines[starts[-1]:]
        cause[0] = cause[0][len(_CAUSE):]
        return "\n".join(cause)
    # No runner line (it never started, or the JVM died): the last words spark-submit said.
    return lines[-1] if lines else None


def return_code(error: BaseException) -> int | None:
    """spark-submit's exit code (the runner's, in client mode) from the Spark hook's exception."""
    match = _RETURN_CODE.search(str(error))
    return int(match.group(1)) if match else None


class RunnerSubmitOperator(SparkSubmitOperator):
    """spark-submit `runner/__main__.py run <pipeline>` on the `spark_default` connection's master.

    No credentials travel as arguments: the runner reads them from the environment and `.env`,
    which the spark-submit child inherits.
    """

    def __init__(self, *, pipeline: str, conn_id: str = "spark_default", **kwargs: Any) -> None:
        from runner.engine.session import driver_java_options

        python = os.environ.get("PYSPARK_PYTHON", sys.executable)
        # pyspark's own spark-submit beside this Python, whatever PATH the worker has.
        spark_submit = Path(sys.executable).parent / "spark-submit"
        if spark_submit.exists():
            kwargs.setdefault("spark_binary", str(spark_submit))
        kwargs = {**RETRIES, **kwargs}
        jars = spark_jars()  # resolved again in the worker, which parses this file before running
        super().__init__(
            application=str(RUNNER_ENTRY),
            application_args=["run", pipeline],
            conn_id=conn_id,
            jars=jars,
            # The same driver classpath and JVM options as a native run, so the driver maps the
            # class archive `make up` wrote (see runner/engine/session.py) and starts as fast.
            driver_class_path=jars.replace(",", os.pathsep) if jars else None,
            name=f"runner-{pipeline}",
            conf={
                # Spark's INFO start-up chatter would bury the runner's own lines in the task log.
                "spark.log.level": "WARN",
                "spark.driver.extraJavaOptions": driver_java_options(),
            },
            env_vars={
                "PYSPARK_PYTHON": python,
                "PYSPARK_DRIVER_PYTHON": python,
                # The runner package lives at the project root, next to the entry file's folder.
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            },
            **kwargs,
        )
        self.pipeline = pipeline

    def execute(self, context: Any) -> None:
        try:
            super().execute(context)
        except AirflowException as error:
            code = return_code(error)
            if code is None:  # not spark-submit's exit (e.g. the connection): Airflow's own error
                raise
            cause = (runner_cause(str(error).partition("Last spark-submit output:")[2])
                     or f"spark-submit exited with code {code} and no message (killed, or out of memory?)")
            if code in NOT_RETRIED:
                self.log.error("runner exited %s (%s, not retried): %s", code, NOT_RETRIED[code], cause)
                raise AirflowFailException(cause) from None
            self.log.error("runner exited %s (retried with backoff): %s", code, cause)
            raise AirflowException(cause) from None
