"""The one task of every pipeline DAG: spark-submit the runner with the pipeline's directory name.

The runner's exit code decides what Airflow does with a failure: 3 (a database or broker is
unreachable) is transient and retried with exponential backoff; 1 (the run failed) and 2 (invalid
pipeline) would fail the same way again, so the task fails at once. The runner hands its exit
code and cause over in a small JSON file (runner.cli.failed); the task's error is that cause.

Example:
    >>> task = RunnerSubmitOperator(pipeline="marts", task_id="run")   # inside a DAG
    >>> task.application_args
    ['run', 'marts']
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from runner.cli import REPORT_FILE
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
        # The runner writes its exit code and cause to this file (runner.cli.failed): nothing is
        # read back from spark-submit's log.
        with tempfile.TemporaryDirectory(prefix="runner-report-") as folder:
            report = Path(folder) / "report.json"
            self.env_vars = {**self.env_vars, REPORT_FILE: str(report)}
            try:
                super().execute(context)
            except AirflowException:
                if not report.is_file():  # the runner never ended by itself (killed, out of memory)
                    raise  # Airflow's own error says so, and the task is retried
                outcome = json.loads(report.read_text())
                code, cause = outcome["exit_code"], outcome["cause"]
                if code in NOT_RETRIED:
                    self.log.error("runner exited %s (%s, not retried): %s", code, NOT_RETRIED[code], cause)
                    raise AirflowFailException(cause) from None
                self.log.error("runner exited %s (retried with backoff): %s", code, cause)
                raise AirflowException(cause) from None
