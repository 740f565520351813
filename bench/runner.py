"""Benchmark of the runner on the default dataset, with its baselines measured in the same run.

    .venv/bin/python bench/runner.py [--repeat N]

(a) `python -m runner run replicate`: the five tables PostgreSQL -> MySQL, staged, checked
    against the source and swapped atomically;
(b) the same work hand-written in PySpark in one session (the floor for this design): each
    table copied, then its copy read back and its count and checksum compared with the rows read;
(c) the original system's method: one `spark-submit` per table, each on a default JVM, copying
    without any check;
(c') the same with the runner's driver JVM options (quick JIT tier, class archive), so the
     gain of one session over many can be told apart from the gain of a faster JVM start;
(a') the runner on a copy of sql/replicate with its `-- verify: checksum` headers removed, and
     (b') the hand-written copy without its check: the same comparison for the bare copy, and
     what the verification costs;
and the runner's fixed overhead: `run` on a pipeline with one trivial file.
Prints seconds (the median of --repeat runs) and the ratios. Needs `make up` and the data
from `python -m datagen.postgres`.

The publish step on its own (no Spark; `--swap-only` runs just this part), on MySQL and
PostgreSQL, for a staged table of SWAP_ROWS rows: the swap of an overwrite and the publish of an
overwrite plus an append (MySQL copies the appended table), median of SWAP_REPEAT; then the time
to publish while a reader holds a transaction on the table for READER_HOLDS seconds, with the
longest wait of another reader polling the table meanwhile.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner import config  # noqa: E402
from runner.engine.session import driver_java_options  # noqa: E402
from runner.targets.base import Staged, target_for  # noqa: E402

SWAP_ROWS = 100_000
SWAP_REPEAT = 7
READER_HOLDS = 5.0

PYTHON = str(ROOT / ".venv" / "bin" / "python")
TABLES = ["product_categories", "users", "products", "orders", "order_details"]
BY_HAND = str(ROOT / "bench" / "replicate_by_hand.py")


def timed(command: list[str]) -> float:
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"benchmark step failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return seconds


def spark_submit() -> str:
    import pyspark

    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


def trivial_pipeline(directory: Path) -> Path:
    directory.mkdir()
    (directory / "pipeline.toml").write_text('source = "postgresql"\ntarget = "mysql"\n')
    (directory / "010_bench_trivial.sql").write_text("-- keys: x\nselect 1 as x\n")
    return directory


def without_verification(directory: Path) -> Path:
    """sql/replicate with its `-- verify: checksum` headers removed: how much of (a) the
    verification takes. Fails if no file had one, so it never times (a) again by mistake."""
    shutil.copytree(ROOT / "sql" / "replicate", directory)
    verified = 0
    for path in sorted(directory.glob("*.sql")):
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if not re.match(r"--\s*verify\s*:", line)]
        verified += len(kept) < len(lines)
        path.write_text("".join(kept))
    if not verified:
        sys.exit("no file of sql/replicate has a verify header: (a') would measure (a) again")
    return directory


def _sql(kind: str, *statements: str) -> None:
    conn = config.connection(kind).connect()
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    conn.commit()
    conn.close()


def _stage(kind: str, table: str, rows: int) -> None:
    """`table` and its staging table, both of `rows` rows, as a run leaves them before publishing."""
    q = (lambda n: f"`{n}`") if kind == "mysql" else (lambda n: f'"{n}"')
    # MariaDB stops a recursive CTE at 1,000 rows: its numbers come from digits cross-joined.
    digits = "(" + " union all ".join(f"select {d} as d" for d in range(10)) + ")"
    joined = " cross join ".join(f"{digits} as d{k}" for k in range(6))
    number = " + ".join(f"d{k}.d * {10 ** k}" for k in range(6)) + " + 1"
    numbers = (f"select i + {{shift}}, concat('row ', i) from (select {number} as i from {joined}) as n "
               f"where i <= {rows}" if kind == "mysql"
               else f"select i + {{shift}}, 'row ' || i from generate_series(1, {rows}) as i")
    # The staged rows have new keys: an append of them is valid.
    for name, shift in ((table, 0), (f"{table}__staging", rows)):
        _sql(kind, f"drop table if exists {q(name)}",
             f"create table {q(name)} (id int primary key, label varchar(40))",
             f"insert into {q(name)} (id, label) {numbers.format(shift=shift)}")


def _publish_once(kind: str, modes: dict[str, str]) -> float:
    """Seconds of one Target.publish of `modes` ({table: mode}) staged with SWAP_ROWS rows each."""
    for table in modes:
        _stage(kind, table, SWAP_ROWS)
    target = target_for(config.connection(kind), "bench_swap")
    target.staged = {t: Staged(t, mode, ("id",), ["id", "label"], SWAP_ROWS) for t, mode in modes.items()}
    target.lock()
    try:
        started = time.monotonic()
        target.publish()
        return time.monotonic() - started
    finally:
        target.unlock()


def _publish_past_a_reader(kind: str) -> tuple[float, float]:
    """(seconds to publish, longest wait of a polling reader) while another reader holds a
    transaction on the table for READER_HOLDS seconds, then leaves."""
    table = "bench_swap_over"
    _stage(kind, table, SWAP_ROWS)
    q = f"`{table}`" if kind == "mysql" else f'"{table}"'
    holder = config.connection(kind).connect()
    with holder.cursor() as cursor:
        cursor.execute(f"select count(*) from {q}")
        cursor.fetchall()
    threading.Timer(READER_HOLDS, holder.rollback).start()
    waits: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        conn = config.connection(kind).connect()
        while not stop.is_set():
            started = time.monotonic()
            with conn.cursor() as cursor:
                cursor.execute(f"select count(*) from {q}")
                cursor.fetchall()
            conn.commit()
            waits.append(time.monotonic() - started)
            time.sleep(0.05)
        conn.close()

    poller = threading.Thread(target=poll)
    poller.start()
    target = target_for(config.connection(kind), "bench_swap")
    target.staged = {table: Staged(table, "overwrite", ("id",), ["id", "label"], SWAP_ROWS)}
    target.lock()
    try:
        started = time.monotonic()
        target.publish()
        seconds = time.monotonic() - started
    finally:
        target.unlock()
        stop.set()
        poller.join()
        holder.close()
    return seconds, max(waits)


def publish_step() -> None:
    """The publish step alone, and past a reader that comes and goes (see the module docstring)."""
    logging.getLogger("runner").setLevel(logging.ERROR)  # the retries' warnings are expected here
    print(f"\npublish step alone, {SWAP_ROWS:,} rows per table, median of {SWAP_REPEAT}:")
    for kind in ("mysql", "postgresql"):
        try:
            swap = statistics.median(_publish_once(kind, {"bench_swap_over": "overwrite"})
                                     for _ in range(SWAP_REPEAT))
            both = {"bench_swap_over": "overwrite", "bench_swap_app": "append"}
            mixed = statistics.median(_publish_once(kind, both) for _ in range(SWAP_REPEAT))
            past, longest = _publish_past_a_reader(kind)
        finally:
            _sql(kind, *(f"drop table if exists bench_swap_{t}" for t in ("over", "app")))
        print(f"  {kind:<10} swap of an overwrite {swap * 1000:7.1f} ms   overwrite + append {mixed * 1000:7.1f} ms   "
              f"past a reader holding {READER_HOLDS:.0f} s: published in {past:4.1f} s, "
              f"another reader waited at most {longest:4.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant; the median is shown")
    parser.add_argument("--swap-only", action="store_true", help="only the publish step (no Spark)")
    args = parser.parse_args()
    if args.swap_only:
        publish_step()
        return
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = PYTHON

    jars = ",".join(sorted(str(p) for p in (ROOT / config.env("SPARK_JARS_DIR")).glob("*.jar")))
    submit = [spark_submit(), "--master", config.env("SPARK_MASTER_URL", "local[*]"), "--jars", jars,
              "--driver-class-path", os.pathsep.join(jars.split(","))]
    with tempfile.TemporaryDirectory() as tmp:
        trivial = trivial_pipeline(Path(tmp) / "trivial")
        unverified = without_verification(Path(tmp) / "replicate")
        variants = {
            "(a) runner: replicate": [PYTHON, "-m", "runner", "run", "replicate"],
            "(b) by hand, one session, checked": [PYTHON, BY_HAND, "--verify", *TABLES],
            "(c) one spark-submit per table": [],
            "(c') the same, runner's JVM options": ["--conf", f"spark.driver.extraJavaOptions={driver_java_options()}"],
            "(a') runner: replicate, verify headers removed": [PYTHON, "-m", "runner", "run", str(unverified)],
            "(b') by hand, one session, copy only": [PYTHON, BY_HAND, *TABLES],
            "runner fixed overhead (one trivial file)": [PYTHON, "-m", "runner", "run", str(trivial)],
        }
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeat):
            for name, command in variants.items():
                if name.startswith("(c"):
                    seconds[name].append(sum(timed([*submit, *command, BY_HAND, table]) for table in TABLES))
                else:
                    seconds[name].append(timed(command))
                print(f"  {name:<42} {seconds[name][-1]:7.1f} s", flush=True)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    a, b, c, c_tuned, a_copy, b_copy = (median[n] for n in list(variants)[:6])
    master = config.env("SPARK_MASTER_URL", "local[*]")
    print(f"\nmedian of {args.repeat} run(s) on {os.cpu_count()} cores, master {master}")
    for name, value in median.items():
        print(f"{name:<44} {value:7.1f} s")
    print(f"(a)/(b) runner vs hand-written single session: {a / b:5.2f}x   (target <= 1.25)")
    print(f"(c)/(a) one submit per table vs runner:        {c / a:5.2f}x   (target >= 4)")
    print(f"(c')/(a) the same, both with the runner's JVM: {c_tuned / a:5.2f}x")
    print(f"(a')/(b') the bare copy, runner vs by hand:    {a_copy / b_copy:5.2f}x")
    print(f"(a)/(b') runner with its check vs bare copy:   {a / b_copy:5.2f}x")
    print(f"(a) - (a') what the runner's verification costs: {a - a_copy:5.1f} s")
    _drop_bench_tables()
    publish_step()


def _drop_bench_tables() -> None:
    connection = config.connection("mysql").connect()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS " + ", ".join(f"bench_{t}" for t in [*TABLES, "trivial"]))
    connection.commit()
    connection.close()


if __name__ == "__main__":
    shutil.which("java") or sys.exit("java is needed: run `make up`")
    main()
