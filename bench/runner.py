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
(a') the runner on sql/replicate without its check file, and (b') the hand-written copy without
     its check: the same comparison for the bare copy, and what the verification costs;
and the runner's fixed overhead: `run` on a pipeline with one trivial file.
Prints seconds (the median of --repeat runs) and the ratios. Needs `make up` and the data
from `python -m datagen.postgres`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner import config  # noqa: E402
from runner.engine.session import driver_java_options  # noqa: E402

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


def without_checks(directory: Path) -> Path:
    """sql/replicate without its check file: how much of (a) the verification takes."""
    shutil.copytree(ROOT / "sql" / "replicate", directory, ignore=shutil.ignore_patterns("*_check_*"))
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant; the median is shown")
    args = parser.parse_args()
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = PYTHON

    jars = ",".join(sorted(str(p) for p in (ROOT / config.env("SPARK_JARS_DIR")).glob("*.jar")))
    submit = [spark_submit(), "--master", config.env("SPARK_MASTER_URL", "local[*]"), "--jars", jars,
              "--driver-class-path", os.pathsep.join(jars.split(","))]
    with tempfile.TemporaryDirectory() as tmp:
        trivial = trivial_pipeline(Path(tmp) / "trivial")
        unchecked = without_checks(Path(tmp) / "replicate")
        variants = {
            "(a) runner: replicate": [PYTHON, "-m", "runner", "run", "replicate"],
            "(b) by hand, one session, checked": [PYTHON, BY_HAND, "--verify", *TABLES],
            "(c) one spark-submit per table": [],
            "(c') the same, runner's JVM options": ["--conf", f"spark.driver.extraJavaOptions={driver_java_options()}"],
            "(a') runner: replicate without its check": [PYTHON, "-m", "runner", "run", str(unchecked)],
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
    print(f"\nmedian of {args.repeat} run(s) on {os.cpu_count()} cores, master {config.env('SPARK_MASTER_URL', 'local[*]')}")
    for name, value in median.items():
        print(f"{name:<44} {value:7.1f} s")
    print(f"(a)/(b) runner vs hand-written single session: {a / b:5.2f}x   (target <= 1.25)")
    print(f"(c)/(a) one submit per table vs runner:        {c / a:5.2f}x   (target >= 4)")
    print(f"(c')/(a) the same, both with the runner's JVM: {c_tuned / a:5.2f}x")
    print(f"(a')/(b') the bare copy, runner vs by hand:    {a_copy / b_copy:5.2f}x")
    print(f"(a)/(b') runner with its check vs bare copy:   {a / b_copy:5.2f}x")
    _drop_bench_tables()


def _drop_bench_tables() -> None:
    connection = config.connection("mysql").connect()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS " + ", ".join(f"bench_{t}" for t in [*TABLES, "trivial"]))
    connection.commit()
    connection.close()


if __name__ == "__main__":
    shutil.which("java") or sys.exit("java is needed: run `make up`")
    main()
