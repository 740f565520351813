"""Benchmark the data generators against the row-by-row baseline, measured in the same run.

PostgreSQL: `python -m datagen.postgres` (bulk generation + COPY) on the configured dataset and
on `--scale 10`, each in a scratch schema; the baseline inserts the same rows one `INSERT` at a
time (the original system's method): the whole default dataset, and for `--scale 10` a sample
of every table inserted into the filled scratch schema, reported per row.
Kafka: `python -m datagen.kafka --count 100000 --interval 0` on a scratch topic; the baseline
sends a sample one event at a time, waiting for each acknowledgement.
The default-scale COPY and the Kafka publish take about a second each, so one busy moment of the
machine moves them by half: each runs --repeat times (default 3) and the median run is reported.

Usage:
    .venv/bin/python bench/datagen.py [--repeat 3] [--sample-fraction 0.02] [--kafka-sample 2000] [--no-kafka]

Scratch schemas and topics are dropped at the end; the shared ones are never touched.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
import time
import uuid
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka import KafkaAdminClient, KafkaProducer  # noqa: E402

from datagen.events import events  # noqa: E402
from datagen.postgres import DEFAULT_SEED, read_sizes  # noqa: E402
from datagen.publish import PRODUCER_SETTINGS  # noqa: E402
from datagen.shop import generate_shop  # noqa: E402
from datagen.table import Table, rows  # noqa: E402
from runner import config  # noqa: E402

SUMMARY = re.compile(r"loaded (\d+) rows .* in ([\d.]+) s \(generate ([\d.]+) s, "
                     r"encode ([\d.]+) s, copy ([\d.]+) s\)")
KAFKA_SUMMARY = re.compile(r"published (\d+) event\(s\) to topic \S+ in ([\d.]+) s")
TARGET_RATIO, TARGET_SCALE10_SECONDS, TARGET_EVENTS_PER_SECOND = 15, 10.0, 20_000


def main() -> int:
    args = _arguments()
    run_id = uuid.uuid4().hex[:8]
    schemas: list[str] = []
    print(f"datagen benchmark: PostgreSQL at {config.connection('postgresql').address}, "
          f"Kafka at {config.env('KAFKA_BOOTSTRAP_SERVERS')}, {os.cpu_count()} CPU(s), "
          f"load average {_load()} (other work on the machine slows every figure)\n")
    try:
        default = median_run([bench_copy(f"bench_dg_{run_id}_copy1_{i}", 1, schemas) for i in range(args.repeat)])
        baseline = bench_baseline_full(f"bench_dg_{run_id}_rows1", schemas)
        scale10 = bench_copy(f"bench_dg_{run_id}_copy10", 10, schemas)
        sample = bench_baseline_sample(f"bench_dg_{run_id}_copy10", 10, args.sample_fraction)
    finally:
        for schema in schemas:
            drop_schema(schema)

    print("\nPostgreSQL (rows/s over generation + load; the baseline times its INSERTs only)")
    print(f"  {'dataset':<34}{'rows':>9}{'seconds':>10}{'rows/s':>11}{'vs baseline':>13}")
    line(f"COPY path, default (median of {args.repeat})", default["rows"], default["seconds"], baseline)
    line("row-by-row INSERT, default", baseline["rows"], baseline["seconds"], baseline)
    line("COPY path, --scale 10", scale10["rows"], scale10["seconds"], sample)
    line("row-by-row INSERT, x10 sample", sample["rows"], sample["seconds"], sample)
    print(f"  row-by-row per row: default {baseline['seconds'] / baseline['rows'] * 1e6:.0f} µs, "
          f"x10 sample {sample['seconds'] / sample['rows'] * 1e6:.0f} µs "
          f"(x10 extrapolated: {sample['seconds'] / sample['rows'] * scale10['rows']:.1f} s)")
    for label, run in (("default", default), ("x10", scale10)):
        print(f"  COPY path {label}: generate {run['generate']:.2f} s, encode {run['encode']:.2f} s, "
              f"copy {run['copy']:.2f} s; whole command {run['wall']:.2f} s incl. Python start-up")
    ratio = rate(default) / rate(baseline)
    checks = [(f"default dataset >= {TARGET_RATIO}x row-by-row", ratio >= TARGET_RATIO,
               f"{ratio:.1f}x"),
              (f"--scale 10 under {TARGET_SCALE10_SECONDS:.0f} s",
               scale10["seconds"] < TARGET_SCALE10_SECONDS, f"{scale10['seconds']:.2f} s")]

    if not args.no_kafka:
        kafka, kafka_baseline = bench_kafka(f"bench_dg_{run_id}", args.kafka_sample, args.repeat)
        print("\nKafka (acks=all)")
        print(f"  {'run':<34}{'events':>9}{'seconds':>10}{'events/s':>11}{'vs baseline':>13}")
        line(f"datagen.kafka --interval 0 (median of {args.repeat})", kafka["rows"], kafka["seconds"], kafka_baseline)
        line("one send + wait per event", kafka_baseline["rows"], kafka_baseline["seconds"],
             kafka_baseline)
        print(f"  whole command {kafka['wall']:.2f} s incl. Python start-up and topic creation; "
              f"batches compressed with {PRODUCER_SETTINGS['compression_type']}, "
              f"C crc32c {'installed' if _has_crc32c() else 'not installed (pure-Python checksums)'}")
        checks.append((f"Kafka >= {TARGET_EVENTS_PER_SECOND} events/s",
                       rate(kafka) >= TARGET_EVENTS_PER_SECOND, f"{rate(kafka):,.0f} events/s"))

    print(f"\nTargets (load average now {_load()})")
    for name, met, value in checks:
        print(f"  [{'met' if met else 'MISSED'}] {name}: {value}")
    return 0


def bench_copy(schema: str, scale: int, schemas: list[str]) -> dict:
    """Run `python -m datagen.postgres --scale K` on a fresh schema; its summary gives the times."""
    create_schema(schema, schemas)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "datagen.postgres", "--scale", str(scale)],
                            cwd=config.ROOT, env=_env(POSTGRESQL_APP_SCHEMA=schema),
                            capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    match = SUMMARY.search(result.stdout)
    rows_, seconds, generate, encode, copy = match.groups()
    print(f"COPY path --scale {scale}: {result.stdout.strip().splitlines()[-1]}")
    return {"rows": int(rows_), "seconds": float(seconds), "generate": float(generate),
            "encode": float(encode), "copy": float(copy), "wall": wall}


def bench_baseline_full(schema: str, schemas: list[str]) -> dict:
    """Insert the default dataset (same seed) one row per INSERT, one commit per table."""
    create_schema(schema, schemas)
    db = connect(schema)
    inserted, seconds = 0, 0.0
    for table in generate_shop(read_sizes(), DEFAULT_SEED):
        started = time.perf_counter()
        inserted += insert_row_by_row(db, table, rows(table))
        seconds += time.perf_counter() - started
    db.close()
    print(f"row-by-row INSERT, default dataset: {inserted} rows in {seconds:.2f} s")
    return {"rows": inserted, "seconds": seconds}


def bench_baseline_sample(schema: str, scale: int, fraction: float) -> dict:
    """Insert a sample of every table of the x`scale` dataset, row by row, into the schema that
    already holds that dataset: ids moved past the generated ones and e-mails altered so the
    rows are new, foreign keys left pointing at the generated parents."""
    db = connect(schema)
    inserted, seconds = 0, 0.0
    for table in generate_shop(read_sizes(scale), DEFAULT_SEED):
        sample = [_fresh_copy(table, row) for row in islice(rows(table), max(1, int(len(table) * fraction)))]
        started = time.perf_counter()
        inserted += insert_row_by_row(db, table, sample)
        seconds += time.perf_counter() - started
    db.close()
    print(f"row-by-row INSERT, x{scale} sample ({fraction:.0%} of every table): "
          f"{inserted} rows in {seconds:.2f} s")
    return {"rows": inserted, "seconds": seconds}


def insert_row_by_row(db, table: Table, table_rows) -> int:
    """The baseline: one INSERT statement per row, then one commit."""
    statement = (f"insert into {table.name} ({', '.join(table.column_names)}) "
                 f"values ({', '.join(['%s'] * len(table.columns))})")
    count = 0
    with db.cursor() as cur:
        for row in table_rows:
            cur.execute(statement, row)
            count += 1
    db.commit()
    return count


def _fresh_copy(table: Table, row: tuple) -> tuple:
    offset = 10_000_000
    values = list(row)
    values[0] += offset  # the id column comes first
    if table.name == "users":
        email = table.column_names.index("email")
        values[email] = "bench." + values[email]
    return tuple(values)


def median_run(runs: list[dict]) -> dict:
    """The run of median seconds (of an odd number of runs, one that really happened)."""
    return sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]


def bench_kafka(topic: str, sample: int, repeat: int) -> tuple[dict, dict]:
    """`datagen.kafka --count 100000 --interval 0` (median of `repeat` runs), and the
    one-at-a-time baseline."""
    try:
        kafka = median_run([publish_burst(topic) for _ in range(repeat)])

        producer = KafkaProducer(bootstrap_servers=config.env("KAFKA_BOOTSTRAP_SERVERS"), acks="all")
        sample_events = list(islice(events(2), sample))
        started = time.perf_counter()
        for key, value in sample_events:
            producer.send(topic, key=key, value=value).get(timeout=30)
        baseline_seconds = time.perf_counter() - started
        producer.close()
        print(f"one send + wait per event: {sample} events in {baseline_seconds:.2f} s")
    finally:
        admin = KafkaAdminClient(bootstrap_servers=config.env("KAFKA_BOOTSTRAP_SERVERS"))
        if topic in admin.list_topics():
            admin.delete_topics([topic])
        admin.close()
    return kafka, {"rows": sample, "seconds": baseline_seconds}


def publish_burst(topic: str, count: int = 100_000) -> dict:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "datagen.kafka", "--count", str(count),
                             "--interval", "0", "--seed", "1"], cwd=config.ROOT,
                            env=_env(KAFKA_TOPIC_NAME=topic), capture_output=True, text=True,
                            check=True)
    wall = time.perf_counter() - started
    published, seconds = KAFKA_SUMMARY.search(result.stdout).groups()
    print(f"datagen.kafka: {result.stdout.strip().splitlines()[-1]}")
    return {"rows": int(published), "seconds": float(seconds), "wall": wall}


def rate(run: dict) -> float:
    return run["rows"] / run["seconds"]


def line(label: str, count: int, seconds: float, baseline: dict) -> None:
    print(f"  {label:<34}{count:>9,}{seconds:>10.2f}{rate({'rows': count, 'seconds': seconds}):>11,.0f}"
          f"{rate({'rows': count, 'seconds': seconds}) / rate(baseline):>12.1f}x")


def create_schema(schema: str, schemas: list[str]) -> None:
    schemas.append(schema)
    subprocess.run(["bash", "local/initdb.sh", "postgresql"], cwd=config.ROOT, check=True,
                   capture_output=True, env=_env(POSTGRESQL_APP_SCHEMA=schema))


def drop_schema(schema: str) -> None:
    db = connect(schema)
    with db.cursor() as cur:
        cur.execute(f'drop schema if exists "{schema}" cascade')
    db.commit()
    db.close()


def connect(schema: str):
    return dataclasses.replace(config.connection("postgresql"), schema=schema).connect()


def _has_crc32c() -> bool:
    try:
        import crc32c  # noqa: F401  (kafka-python checksums batches with it when present)
    except ImportError:
        return False
    return True


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def _env(**overrides: str) -> dict[str, str]:
    return {**os.environ, **overrides}


def _arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3,
                   help="runs of the default-scale COPY and of the Kafka publish; the median is reported (default 3)")
    p.add_argument("--sample-fraction", type=float, default=0.02,
                   help="share of every x10 table the row-by-row baseline inserts (default 0.02)")
    p.add_argument("--kafka-sample", type=int, default=2000,
                   help="events the one-at-a-time Kafka baseline sends (default 2000)")
    p.add_argument("--no-kafka", action="store_true", help="benchmark PostgreSQL only")
    return p.parse_args()


if __name__ == "__main__":
    sys.exit(main())
