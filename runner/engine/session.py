"""The one SparkSession of a run: master from SPARK_MASTER_URL, extra jars from SPARK_JARS_DIR.

Start-up is most of a small run's time. When `make up` has written a class-data sharing
archive of the driver (`python -m runner.engine.session`), the driver JVM maps Spark's classes
from it instead of loading and verifying them one by one: on 2 cores a session starts in
about 4 s instead of 7, and its first query runs in half the time.

Illustration (starts a JVM):

    spark = spark_session("marts")
    spark.conf.get("spark.sql.session.timeZone")   # 'UTC'
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

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


def class_archive() -> Path:
    """The driver JVM's class-data sharing archive, beside the jars it was made with."""
    return jars_dir().parent / "spark-driver.jsa"


def driver_java_options(with_archive: bool = True, long_lived: bool = False) -> str:
    """The driver JVM's options: UTC; for a run (not a long-lived session) the JIT's quick tier
    only, since on a few cores the optimising compiler's threads take the CPU from a short
    job (a replicate run takes about a third less time), while a session that runs for hours
    gains from it; and the class archive when there is one (a stale archive, from other jars
    or another JVM, is ignored by the JVM: the session just starts slower)."""
    options = ["-Duser.timezone=UTC"] + ([] if long_lived else ["-XX:TieredStopAtLevel=1"])
    archive = class_archive()
    if with_archive and archive.is_file():
        options += [f"-XX:SharedArchiveFile={archive}", "-Xshare:auto", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
    return " ".join(options)


def ui_enabled() -> bool:
    """Whether a run's driver serves Spark's web UI (SPARK_UI_ENABLED=true; off by default)."""
    value = config.env("SPARK_UI_ENABLED", "false").strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise config.ConfigError(f"SPARK_UI_ENABLED={value!r} is not true or false")
    return value in ("true", "1", "yes")


def on_loopback(master: str) -> bool:
    """Whether the master runs on this machine's loopback (`local[*]`, `spark://localhost:7077`)."""
    return master.startswith("local") or urlsplit(master).hostname in ("localhost", "127.0.0.1", "::1")


def spark_session(app_name: str, master: str | None = None, extra: dict[str, str] | None = None,
                  long_lived: bool = False):
    """Build (or join) the run's SparkSession (`long_lived`: one that runs again and again, as
    with --follow); the jars are never downloaded at run time."""
    from pyspark.sql import SparkSession

    logging.getLogger("py4j").setLevel(logging.WARNING)  # its INFO lines say nothing to a user
    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
    builder = SparkSession.builder.appName(f"runner:{app_name}")
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        # Under spark-submit the JVM already runs, with the master from its command line.
        master = master or config.env("SPARK_MASTER_URL", "local[*]")
        builder = builder.master(master)
        if on_loopback(master):
            # Loopback by address, never by this machine's host name, which may not resolve (a
            # container, a chroot): SPARK_LOCAL_IP reaches the JVM that PySpark starts (its UI and
            # block manager), and the two settings where the driver listens and what it tells executors.
            config.jvm_on_loopback()
            builder = (builder.config("spark.driver.bindAddress", config.LOOPBACK)
                       .config("spark.driver.host", config.LOOPBACK))
    jars = ",".join(jar_files())
    settings = {
        "spark.jars": jars,
        "spark.driver.extraClassPath": os.pathsep.join(jar_files()),
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": driver_java_options(long_lived=long_lived),
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.shuffle.partitions": "8",
        "spark.scheduler.mode": "FAIR",
        "spark.ui.showConsoleProgress": "false",
        # The driver's UI is unauthenticated and can kill jobs: off unless SPARK_UI_ENABLED asks.
        "spark.ui.enabled": str(ui_enabled()).lower(),
        **(extra or {}),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# The queries whose classes the archive holds: the shapes of the project's SQL (joins,
# aggregates, windows, JSON, dates, decimals) planned, code-generated and run once.
_ARCHIVE_WORKLOAD = """
with people as (
    select id, concat('user', id) as name, cast(id % 7 as decimal(10, 2)) as amount,
           timestamp '2024-01-01 00:00:00' + make_interval(0, 0, 0, id) as at,
           to_json(named_struct('id', id, 'name', concat('u', id))) as payload
    from range(1000)
),
parsed as (
    select from_json(payload, 'id bigint, name string') as event, * from people
),
ranked as (
    select *, row_number() over (partition by id % 10 order by at) as rank from parsed
)
select a.id % 10 as bucket, count(*) as n, sum(a.amount) as total, avg(b.amount) as average,
       max(date_format(a.at, 'yyyy-MM-dd HH:mm:ss.SSSSSS')) as last_at,
       sum(cast(xxhash64(to_json(array(cast(a.id as string), a.name))) as decimal(38, 0))) as checksum,
       count(distinct a.event.name) as names
from ranked as a
left join people as b on a.id = b.id
where a.rank > 0
group by a.id % 10
union all
select -1, 0, null, null, null, null, 0
"""


def write_class_archive() -> Path:
    """Write `class_archive()`: a session that runs the workload above and, as its JVM exits,
    dumps the classes it loaded. Written aside and renamed, so a run never maps half a file."""
    archive = class_archive()
    partial = archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    options = f"{driver_java_options(with_archive=False)} -XX:ArchiveClassesAtExit={partial} -Xlog:cds=off"
    spark = spark_session("class-archive", master="local[*]", extra={"spark.driver.extraJavaOptions": options})
    spark.sql(_ARCHIVE_WORKLOAD).collect()
    spark.createDataFrame([(1, "a")], "id int, name string").groupBy("name").count().collect()
    gateway = spark.sparkContext._gateway
    spark.stop()
    gateway.shutdown()
    gateway.proc.stdin.close()  # the JVM exits when PySpark's pipe closes, and dumps the archive
    gateway.proc.wait()
    if not partial.is_file():
        raise RuntimeError(f"the JVM wrote no class archive at {partial}")
    partial.replace(archive)
    return archive


if __name__ == "__main__":  # python -m runner.engine.session: (re)write the class archive (`make up` does)
    print(f"wrote {write_class_archive()}")
