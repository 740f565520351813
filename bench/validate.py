"""Cold time of `python -m runner validate` over all pipelines, with Spark's parser (a bare JVM
mapping its class archive) and without it (the sqlglot-only path, measured in the same run by
hiding `java` from the process: the fallback the runner takes where no JVM is installed).

Each run is a fresh process, as a user or `make validate` starts it; the figure is the median.

Usage: .venv/bin/python bench/validate.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cold_run(env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "runner", "validate"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"validate failed:\n{result.stdout}{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs per variant (default 5)")
    args = parser.parse_args()
    spark = dict(os.environ)
    # Without a JVM on PATH (and no JAVA_HOME) validate takes its sqlglot-only path.
    sqlglot_only = {**os.environ, "PATH": os.path.dirname(sys.executable), "JAVA_HOME": ""}
    cold_run(spark)  # writes the parser's class archive if this machine has none yet
    with_spark, baseline = [], []
    for _ in range(args.repeat):  # interleaved, so a noisy moment hits both variants
        with_spark.append(cold_run(spark))
        baseline.append(cold_run(sqlglot_only))
    median, base = statistics.median(with_spark), statistics.median(baseline)
    print(f"validate, all pipelines, cold, median of {args.repeat}: with Spark's parser {median:.2f} s "
          f"(min {min(with_spark):.2f}, max {max(with_spark):.2f}); sqlglot only {base:.2f} s "
          f"(min {min(baseline):.2f}, max {max(baseline):.2f}); Spark's parser adds {median - base:.2f} s; "
          f"budget 3 s: {'met' if median <= 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
