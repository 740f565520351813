"""The one SparkSession of a run: master from SPARK_MASTER_URL, extra jars from SPARK_JARS_DIR.

Example:
    >>> spark = spark_session("marts")
    >>> spark.conf.get("spark.sql.session.timeZone")
    'UTC'
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from runner import config


def jars_dir() -> Path:
    """The folder of JDBC drivers and the Kafka connector (made by `make up`, baked into images)."""
    path = Path(config.env("SPARK_JARS_DIR", ".state/jars/spark"))
    return path if path.is_absolute() else config.ROOT / path


def jar_files() -> list[str]:
    directory = jars_dir()
    jars = sorted(str(p) for p in directory.glob("*.jar"))
    if not jars:
        raise config.ConfigError(f"no jars in {directory} (SPARK_JARS_DIR): run `make up` to resolve jvm/pom.xml")
    return jars


def spark_session(app_name: str, master: str | None = None, extra: dict[str, str] | None = None):
    """Build (or join) the run's SparkSession; the jars are never downloaded at run time."""
    from pyspark.sql import SparkSession

    logging.getLogger("py4j").setLevel(logging.WARNING)  # its INFO lines say nothing to a user
    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
    builder = SparkSession.builder.appName(f"runner:{app_name}")
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        # Under spark-submit the JVM already runs, with the master from its command line.
        master = master or config.env("SPARK_MASTER_URL", "local[*]")
        builder = builder.master(master)
        if master.startswith("local"):
            builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
    jars = ",".join(jar_files())
    settings = {
        "spark.jars": jars,
        "spark.driver.extraClassPath": os.pathsep.join(jar_files()),
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.shuffle.partitions": "8",
        "spark.scheduler.mode": "FAIR",
        "spark.ui.showConsoleProgress": "false",
        **(extra or {}),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
