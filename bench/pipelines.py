"""Benchmark the three pipelines, with the original system's method measured in the same run.

    .venv/bin/python bench/pipelines.py [--scale 10] [--events 100000] [--repeat N] [--keep] [--stream-only]

Prints, each as the wall-clock seconds of one `python -m runner run` (what Airflow runs):
- `replicate` and `marts` on the default dataset (PG_DATAGEN_NUM_* in .env) and on `--scale`
  times it (`--scale 100`: x1, x10 and x100), each in a scratch PostgreSQL schema and MySQL
  database of its own; for each its steps from the runner's log: per table the read (Spark
  reading the source and writing the load files), the write (the database's bulk load), the
  verification inside both databases, with rows/s, and the publish;
- `stream` draining 10,000 x scale queued events (same scales, `run stream --drain`), on a scratch topic;
- the stream cold: one `run stream` draining `--events` queued events, JVM start included;
- the stream's steady rate: events/s draining `--events` queued events in a warm session
  (one SparkSession that has already drained a batch of that size, as with `run stream --follow`);
- the baseline on the default dataset: the original system's method, one `spark-submit` per
  table and one per mart (plain PySpark, Spark's own JDBC overwrite, no staging, no checks),
  writing `bench_<table>` next to the runner's tables.
With --repeat N every measurement is taken N times, the runner's and the original method's
interleaved round by round, and medians are reported. Then the ratios against the targets:
replicate + marts at least 5x faster than the baseline, the largest dataset in at most 3x the
default's time; the stream's `--events` drained cold in under 10 s and warm at least
25,000 events/s (read_committed, exactly once).

Needs `make up`. The scratch schemas, databases and topics (named bench_pipelines_<run>_x<scale>)
are dropped at the end; `--keep` leaves them for a look.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner import config  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
TABLES = ["product_categories", "users", "products", "orders", "order_details"]
MARTS = ["mart_user_activity", "mart_product_sales", "mart_average_check"]
BY_HAND_TABLES = str(ROOT / "bench" / "replicate_by_hand.py")
STREAM_EVENTS_PER_SCALE = 10_000
STREAM_MAX_SCALE = 10  # the stream is timed up to x10: x100 would queue a million events first
LOCKED = "holds its lock"


# --- scratch places ------------------------------------------------------------------------------

@dataclasses.dataclass
class Scratch:
    """A PostgreSQL schema, a MySQL database and a Kafka topic named `name`."""

    name: str

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "POSTGRESQL_APP_SCHEMA": self.name, "MYSQL_APP_DB": self.name,
                "KAFKA_TOPIC_NAME": self.name}

    def create(self, scale: int) -> None:
        subprocess.run(["bash", "local/initdb.sh", "postgresql", "mysql"], cwd=ROOT, env=self.env,
                       check=True, capture_output=True)
        result = subprocess.run([PYTHON, "-m", "datagen.postgres", "--scale", str(scale)], cwd=ROOT,
                                env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"datagen.postgres --scale {scale} failed:\n{result.stderr[-2000:]}")

    def drop(self) -> None:
        pg = dataclasses.replace(config.connection("postgresql"), schema=self.name).connect()
        with pg.cursor() as cursor:
            cursor.execute(f'drop schema if exists "{self.name}" cascade')
        pg.commit()
        pg.close()
        my = dataclasses.replace(config.connection("mysql"), database=self.name).connect()
        with my.cursor() as cursor:
            cursor.execute(f"drop database if exists `{self.name}`")
        my.close()
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=config.env("KAFKA_BOOTSTRAP_SERVERS"))
        try:
            if self.name in admin.list_topics():
                admin.delete_topics([self.name])
        finally:
            admin.close()


def stream_copy(directory: Path) -> Path:
    """An unchanged copy of sql/stream: the scratch's KAFKA_TOPIC_NAME names its topic."""
    pipeline = directory / "stream"
    shutil.copytree(ROOT / "sql" / "stream", pipeline)
    return pipeline


def publish_events(scratch: Scratch, count: int) -> None:
    """`count` generated events onto the scratch topic (not timed)."""
    result = subprocess.run([PYTHON, "-m", "datagen.kafka", "--count", str(count), "--interval", "0"],
                            cwd=ROOT, env=scratch.env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"datagen.kafka --count {count} failed:\n{result.stderr[-2000:]}")


# --- timed steps ---------------------------------------------------------------------------------

def timed(command: list[str], env: dict[str, str]) -> float:
    """Seconds of one successful run of `command`; a run turned away by the pipeline's lock
    (another run of the same pipeline on this server) is retried and not counted."""
    return timed_with_log(command, env)[0]


def timed_with_log(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """timed(), and what the successful run wrote to stderr."""
    while True:
        started = time.monotonic()
        result = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        seconds = time.monotonic() - started
        if result.returncode == 0:
            return seconds, result.stderr
        if not (result.returncode == 3 and LOCKED in result.stderr):
            sys.exit(f"benchmark step failed: {' '.join(command)}\n{result.stderr[-3000:]}")
        time.sleep(2)


def run(pipeline: str | Path, scratch: Scratch, drain: bool = False) -> float:
    return timed([PYTHON, "-m", "runner", "run", str(pipeline), *(["--drain"] if drain else [])], scratch.env)


# What the runner logs of each step (runner/targets/base.py, runner/engine/verify.py, run.py).
_LOADED = re.compile(r"(\w+)__staging: (\d+) rows read in ([\d.]+)s, loaded in ([\d.]+)s")
_VERIFIED = re.compile(r"verified \w+\.(\w+): \d+ rows equal to \S+\s+([\d.]+)s")
_PUBLISHED = re.compile(r"publish took ([\d.]+)s")


def run_steps(pipeline: str, scratch: Scratch) -> tuple[float, dict[str, float]]:
    """Seconds of one run and of its steps: `<table> read|write|verify`, `<table> rows`, `publish`."""
    seconds, log = timed_with_log([PYTHON, "-m", "runner", "run", pipeline], scratch.env)
    steps = {}
    for table, rows, read, write in _LOADED.findall(log):
        steps |= {f"{table} rows": float(rows), f"{table} read": float(read), f"{table} write": float(write)}
    steps |= {f"{table} verify": float(verify) for table, verify in _VERIFIED.findall(log)}
    steps["publish"] = sum(float(p) for p in _PUBLISHED.findall(log))
    return seconds, steps


def warm_drains(pipeline: Path, scratch: Scratch, count: int, repeat: int) -> list[float]:
    """Seconds for a warm session (one that already drained a batch, as under --follow) to drain `count`
    queued events, `repeat` times."""
    os.environ.update(scratch.env)
    from runner.engine.run import run_pipeline
    from runner.engine.session import spark_session
    from runner.errors import RunnerError
    from runner.model.pipeline import load_pipeline

    loaded = load_pipeline(pipeline)
    spark = spark_session("bench-stream", long_lived=True)  # as `run stream --follow` starts it

    def drain() -> tuple[float, int]:
        while True:  # a run turned away by the pipeline's lock is retried and not counted
            started = time.monotonic()
            try:
                summary = run_pipeline(loaded, spark)
            except RunnerError as error:
                if LOCKED not in str(error):
                    raise
                time.sleep(2)
                continue
            return time.monotonic() - started, sum(summary.rows.values())

    # Warm-up, not timed: drain what is queued, then one batch as large as the measured ones,
    # so drivers are loaded and the JIT has compiled the hot paths (as in a running --follow).
    drain()
    publish_events(scratch, count)
    drain()
    seconds = []
    for _ in range(repeat):
        publish_events(scratch, count)
        elapsed, drained = drain()
        if drained != count:
            sys.exit(f"the warm run drained {drained} events, expected {count}")
        seconds.append(elapsed)
        print(f"  warm drain {elapsed:7.1f} s", flush=True)
    spark.stop()
    return seconds


def spark_submit_command() -> list[str]:
    import pyspark

    jars = sorted(str(p) for p in (ROOT / config.env("SPARK_JARS_DIR")).glob("*.jar"))
    return [str(Path(pyspark.__file__).parent / "bin" / "spark-submit"),
            "--master", config.env("SPARK_MASTER_URL", "local[*]"),
            "--jars", ",".join(jars), "--driver-class-path", os.pathsep.join(jars)]


def original_method(scratch: Scratch) -> tuple[float, float]:
    """(tables, marts): seconds of one spark-submit per table, then one per mart."""
    submit = spark_submit_command()
    env = {**scratch.env, "PYSPARK_PYTHON": PYTHON, "PYSPARK_DRIVER_PYTHON": PYTHON}
    tables = sum(timed([*submit, BY_HAND_TABLES, table], env) for table in TABLES)
    marts = sum(timed([*submit, __file__, "--by-hand-mart", mart], env) for mart in MARTS)
    return tables, marts


# --- the baseline's marts, written as the original system wrote them ---------------------------

def by_hand_mart(mart: str) -> None:
    """One mart in plain PySpark (run under spark-submit): read MySQL, aggregate, overwrite bench_<mart>."""
    from pyspark.sql import functions as F

    from runner.engine.session import spark_session

    spark = spark_session(f"{mart}-by-hand")
    mysql = config.connection("mysql")

    def table(name: str):
        return spark.read.jdbc(mysql.jdbc_url, name, properties=mysql.jdbc_properties)

    orders, users = table("orders"), table("users")
    if mart == "mart_user_activity":
        result = (orders.join(users, "user_id")
                  .groupBy("user_id", "first_name", "last_name", "status")
                  .agg(F.count("*").alias("order_count"), F.sum("total_amount").alias("total_spent")))
    elif mart == "mart_product_sales":
        result = (table("order_details").join(table("products"), "product_id")
                  .join(orders.select("order_id", "status"), "order_id")
                  .groupBy("product_id", "name", "status")
                  .agg(F.sum("quantity").alias("total_quantity_sold"), F.sum("total_price").alias("total_sales")))
    else:
        result = (orders.join(users, "user_id")
                  .groupBy("status", "loyalty_status")
                  .agg(F.round(F.avg("total_amount"), 2).alias("average_check")))
    result.write.option("batchsize", 10000).jdbc(mysql.jdbc_url, f"bench_{mart}", mode="overwrite",
                                                 properties=mysql.jdbc_properties)
    spark.stop()


# --- report --------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10, help="the larger dataset, times the default (default 10)")
    parser.add_argument("--events", type=int, default=100_000, help="queued events for the stream's rate")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every measurement, interleaved; medians are reported (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch schemas, databases and topics")
    parser.add_argument("--stream-only", action="store_true",
                        help="only the stream's cold run and warm rate, on the default dataset")
    parser.add_argument("--by-hand-mart", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.by_hand_mart:
        by_hand_mart(args.by_hand_mart)
        return
    shutil.which("java") or sys.exit("java is needed: run `make up`")

    scales = [1] if args.stream_only else sorted({1, 10, args.scale}) if args.scale > 10 else [1, args.scale]
    tag = uuid.uuid4().hex[:6]  # concurrent benchmark runs never share a scratch place
    scratches = {scale: Scratch(f"bench_pipelines_{tag}_x{scale}") for scale in scales}
    samples: dict[str, list[float]] = defaultdict(list)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            streams = {}
            for scale, scratch in scratches.items():
                print(f"x{scale}: generating the shop in {scratch.name} (not timed)", flush=True)
                scratch.create(scale)
                streams[scale] = stream_copy(Path(tmp) / f"x{scale}")
            # Rounds interleave the runner and the original method, so a busy machine slows both.
            for round_ in range(1, args.repeat + 1):
                print(f"round {round_} of {args.repeat}", flush=True)
                for scale, scratch in scratches.items() if not args.stream_only else ():
                    if scale <= STREAM_MAX_SCALE:
                        publish_events(scratch, STREAM_EVENTS_PER_SCALE * scale)
                    for name in ("replicate", "marts"):
                        seconds, steps = run_steps(name, scratch)
                        samples[f"{name} x{scale}"].append(seconds)
                        for step, value in steps.items():
                            samples[f"{name} x{scale} {step}"].append(value)
                        print(f"  {name:<10} x{scale:<3} {seconds:7.1f} s", flush=True)
                    for name, pipeline in (("stream", streams[scale]),) if scale <= STREAM_MAX_SCALE else ():
                        samples[f"{name} x{scale}"].append(run(pipeline, scratch, drain=name == "stream"))
                        print(f"  {name:<10} x{scale:<3} {samples[f'{name} x{scale}'][-1]:7.1f} s", flush=True)
                publish_events(scratches[1], args.events)
                samples["stream cold"].append(run(streams[1], scratches[1]))
                print(f"  stream cold, {args.events} events {samples['stream cold'][-1]:7.1f} s", flush=True)
                if args.stream_only:
                    continue
                tables, marts = original_method(scratches[1])
                samples["original tables"].append(tables)
                samples["original marts"].append(marts)
                print(f"  original method: {len(TABLES)} table submits {tables:7.1f} s, "
                      f"{len(MARTS)} mart submits {marts:7.1f} s", flush=True)
            print(f"stream: a warm session draining {args.events} queued events", flush=True)
            # A warm drain takes seconds: at least three, so one noisy drain is not the figure.
            samples["warm drain"] = warm_drains(stream_copy(Path(tmp) / "warm"),
                                                scratches[1], args.events, max(3, args.repeat))
    finally:
        if not args.keep:
            for scratch in scratches.values():
                scratch.drop()
    report({name: statistics.median(values) for name, values in samples.items()}, scales, args.events,
           args.repeat, args.stream_only)


def report(median: dict[str, float], scales: list[int], events: int, repeat: int, stream_only: bool) -> None:
    if stream_only:
        print(f"\nmedian of {repeat} round(s) on {os.cpu_count()} cores, load average now "
              f"{os.getloadavg()[0]:.1f}")
    else:
        report_pipelines(median, scales, repeat)
    print(f"stream, warm session: {events} events in {median['warm drain']:.1f} s = "
          f"{events / median['warm drain']:,.0f} events/s, median of at least 3 drains   (target >= 25,000)")
    print(f"stream, one cold run (JVM start included): {events} events in "
          f"{median['stream cold']:.1f} s = {events / median['stream cold']:,.0f} events/s   (target < 10 s)")


def report_pipelines(median: dict[str, float], scales: list[int], repeat: int) -> None:
    large = scales[-1]
    print(f"\nmedian of {repeat} round(s) on {os.cpu_count()} cores, master "
          f"{config.env('SPARK_MASTER_URL', 'local[*]')}, load average now {os.getloadavg()[0]:.1f}; "
          "seconds of one `python -m runner run` each")
    print(f"{'pipeline':<34}" + "".join(f"{f'x{scale}':>10}" for scale in scales) + f"{f'x{large}/x1':>9}")
    for name in ("replicate", "marts", "stream"):
        shown = [scale for scale in scales if f"{name} x{scale}" in median]
        cells = "".join(f"{median[f'{name} x{scale}']:10.1f}" if scale in shown else f"{'-':>10}" for scale in scales)
        ratio = median[f"{name} x{shown[-1]}"] / median[f"{name} x1"]
        print(f"{name:<34}{cells}{ratio:8.2f}x" + (f" (x{shown[-1]})" if shown[-1] != large else ""))
    ours = {scale: median[f"replicate x{scale}"] + median[f"marts x{scale}"] for scale in scales}
    baseline = median["original tables"] + median["original marts"]
    print(f"{'replicate + marts':<34}" + "".join(f"{ours[scale]:10.1f}" for scale in scales)
          + f"{ours[large] / ours[1]:8.2f}x   (target <= 3x)")
    print(f"{'original method (8 spark-submits)':<34}{baseline:10.1f}")
    print(f"\noriginal method / runner, replicate + marts, default data: {baseline / ours[1]:5.2f}x   (target >= 5x)")
    for scale in scales:
        print(f"\nsteps at x{scale} (seconds; tables run concurrently, so they overlap): read = Spark reads the "
              "source and writes the load files, write = the database's bulk load, verify = count and checksum "
              "inside both databases")
        print(f"  {'table':<22}{'rows':>10}{'read':>8}{'write':>8}{'verify':>8}{'rows/s':>10}")
        for name in ("replicate", "marts"):
            for table in TABLES if name == "replicate" else MARTS:
                key = f"{name} x{scale} {table}"
                if f"{key} rows" not in median:
                    continue
                rows, read, write = median[f"{key} rows"], median[f"{key} read"], median[f"{key} write"]
                verify = f"{median[f'{key} verify']:8.1f}" if f"{key} verify" in median else f"{'-':>8}"
                rate = rows / max(read + write, 1e-3)
                print(f"  {table:<22}{rows:10.0f}{read:8.1f}{write:8.1f}{verify}{rate:10,.0f}")
            print(f"  {name + ' publish':<22}{'':>10}{median[f'{name} x{scale} publish']:8.1f}")


if __name__ == "__main__":
    main()
