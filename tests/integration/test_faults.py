"""Publishing under faults, against the real databases: readers that hold transactions open, a
run lock whose connection dies, a MySQL publish mixing appends with an overwrite that cannot
rename. The runner runs as a subprocess (see test_runner.py) on ad-hoc pipelines in temporary
directories, on tables of its own (`t_<random>_*`), all dropped afterwards.

Every pipeline here publishes two tables, `<prefix>_over` (overwrite) and `<prefix>_app`
(append), both published before the run with OLD rows; a reader holds a transaction on
`<prefix>_over` while a second reader polls it and measures its longest wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from runner import config
from runner.targets.base import target_for
from tests.fixtures.runner.pipelines import settings_toml, write_pipeline
from tests.integration.test_runner import (
    Run,
    Runner,
    connect,
    create_source,
    drop_tables,
    new_prefix,
    pipeline_dir,
    q,
    rows,
    sql,
    tables_like,
    wait_for,
)

pytestmark = pytest.mark.integration

SOURCE_ROWS = [(i, f"new {i}", None, None) for i in (1, 2, 3)]
OLD = [(100, "old")]
# A reader's longest wait while a publish retries: one swap attempt's lock wait (2 s) plus
# slack for a loaded 2-core machine. Without the bounded swap it was 60 s and more.
READER_WAIT_BOUND = 5.0
WAITS = "waits for the lock"

SLEEPING_CHECK = """\
-- mode: check

-- Holds the run for about ten seconds after staging, before the publish.

select id
from {target}.{prefix}_over
where java_method('java.lang.Thread', 'sleep', cast(10000 as bigint)) = 'never'
"""


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh table-name prefix; every table starting with it is dropped afterwards."""
    name = new_prefix()
    yield name
    drop_tables(name)


def mixed_pipeline(tmp_path: Path, prefix: str, target: str, publish_timeout: float,
                   extra: dict[str, str] | None = None) -> Path:
    """An overwrite and an append into `target`, over published tables holding OLD rows."""
    create_source(prefix, SOURCE_ROWS)
    for suffix in ("over", "app"):
        sql(target, f"create table {q(target, f'{prefix}_{suffix}')} (id int primary key, name varchar(20))")
        sql(target, f"insert into {q(target, f'{prefix}_{suffix}')} values (%s, %s)", OLD)
    select = f"select id, cast(name as varchar(20)) as name\nfrom {prefix}_src\n"
    files = {f"010_{prefix}_over.sql": f"-- mode: overwrite\n-- keys: id\n\n{select}",
             f"020_{prefix}_app.sql": f"-- mode: append\n-- keys: id\n\n{select}", **(extra or {})}
    settings = settings_toml(tables=(f"{prefix}_src",), target=target) + f"publish_timeout = {publish_timeout}\n"
    return write_pipeline(pipeline_dir(tmp_path, prefix), files, settings)


def published_before(target: str, prefix: str) -> None:
    """Nothing of the run is visible, and nothing of it is left behind."""
    assert rows(target, f"{prefix}_over") == OLD
    assert rows(target, f"{prefix}_app") == OLD
    assert tables_like(target, prefix) == sorted([f"{prefix}_app", f"{prefix}_over"])


def session_id(conn, target: str) -> int:
    with conn.cursor() as cursor:
        cursor.execute("select connection_id()" if target == "mysql" else "select pg_backend_pid()")
        return cursor.fetchone()[0]


@contextmanager
def open_reader(target: str, table: str) -> Iterator[tuple[object, int]]:
    """A reader that read `table` in a transaction it keeps open (a BI tool with autocommit off)."""
    conn = config.connection(target).connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"select count(*) from {q(target, table)}")
            cursor.fetchall()
        yield conn, session_id(conn, target)
    finally:
        conn.close()


@contextmanager
def polling_reader(target: str, table: str) -> Iterator[list[float]]:
    """Another reader, autocommit, reading `table` again and again; yields the seconds each read took."""
    waits: list[float] = []
    errors: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        conn = connect(target)
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    with conn.cursor() as cursor:
                        cursor.execute(f"select count(*) from {q(target, table)}")
                        cursor.fetchall()
                except Exception as error:  # a failed read is a finding
                    errors.append(f"{type(error).__name__}: {error}")
                    return
                waits.append(time.monotonic() - started)
                time.sleep(0.05)
        finally:
            conn.close()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield waits
    finally:
        stop.set()
        thread.join(timeout=30)
    assert errors == [], errors


def lock_session(target: str, pipeline: Path) -> int | None:
    """The server session holding the run lock of `pipeline`, if any."""
    name = target_for(config.connection(target), pipeline.name).lock_name
    if target == "mysql":
        return sql("mysql", "select is_used_lock(%s)", (name,))[0][0]
    found = sql("postgresql", "select pid from pg_locks where locktype = 'advisory' and granted and objsubid = 1 "
                              "and ((classid::bigint << 32) | objid::bigint) = hashtext(%s)::bigint", (name,))
    return found[0][0] if found else None


def kill_session(target: str, session: int) -> None:
    if target == "mysql":
        sql("mysql", f"kill {int(session)}")
    else:
        sql("postgresql", "select pg_terminate_backend(%s)", (session,))


def finished(runner: Runner) -> Run:
    try:
        return runner.finish(timeout=600)
    except BaseException:
        runner.kill()
        raise


# --- a reader with an open transaction -------------------------------------------------------

@pytest.mark.parametrize("target", ["mysql", "postgresql"])
def test_a_reader_transaction_delays_the_publish_until_it_ends_and_other_readers_never_wait(
        tmp_path: Path, prefix: str, target: str) -> None:
    pipeline = mixed_pipeline(tmp_path, prefix, target, publish_timeout=90)
    with polling_reader(target, f"{prefix}_over") as waits:
        with open_reader(target, f"{prefix}_over") as (_, blocker):
            runner = Runner(pipeline)
            wait_for(lambda: WAITS in runner.stderr_so_far(), "the publish to wait for the reader", runner)
            time.sleep(6)  # a few retries while the reader keeps its transaction
        started = time.monotonic()
        run = finished(runner)
        after_reader = time.monotonic() - started
    assert run.returncode == 0, run.explain()
    assert after_reader < 30, f"published {after_reader:.0f} s after the reader left"
    waited = [line for line in run.stderr.splitlines() if WAITS in line]
    assert waited and f"session {blocker} " in waited[0], waited[:1]
    assert max(waits) < READER_WAIT_BOUND, f"a reader waited {max(waits):.1f} s"
    assert rows(target, f"{prefix}_over") == [(i, name) for i, name, _, _ in SOURCE_ROWS]
    assert rows(target, f"{prefix}_app") == sorted(OLD + [(i, name) for i, name, _, _ in SOURCE_ROWS])
    assert [t for t in tables_like(target, prefix) if not t.endswith("_src")] == [f"{prefix}_app", f"{prefix}_over"]


@pytest.mark.parametrize("target", ["mysql", "postgresql"])
def test_a_reader_that_outlasts_the_budget_fails_the_run_with_exit_3_naming_it_and_publishes_nothing(
        tmp_path: Path, prefix: str, target: str) -> None:
    """On MySQL this is also the mixed publish whose rename fails: the append, built beside its
    table, must not be visible either."""
    pipeline = mixed_pipeline(tmp_path, prefix, target, publish_timeout=6)
    with polling_reader(target, f"{prefix}_over") as waits:
        with open_reader(target, f"{prefix}_over") as (_, blocker):
            run = Runner(pipeline).finish(timeout=600)
    assert run.returncode == 3, run.explain()
    assert len(run.error_lines) == 1, run.explain()
    error = run.error_lines[0]
    assert f"{prefix}_over" in error and f"session {blocker} " in error and "nothing was published" in error, error
    assert max(waits) < READER_WAIT_BOUND, f"a reader waited {max(waits):.1f} s"
    sql("postgresql", f'drop table "{prefix}_src"')
    published_before(target, prefix)


# --- the run lock stays real -----------------------------------------------------------------

@pytest.mark.parametrize("target", ["mysql", "postgresql"])
def test_a_killed_lock_connection_stops_the_run_with_exit_3_before_it_publishes(
        tmp_path: Path, prefix: str, target: str) -> None:
    check = {"900_check_sleeps.sql": SLEEPING_CHECK.format(target=target, prefix=prefix)}
    pipeline = mixed_pipeline(tmp_path, prefix, target, publish_timeout=30, extra=check)
    runner = Runner(pipeline)
    wait_for(lambda: f"{prefix}_app__staging" in tables_like(target, prefix)
             and f"{prefix}_over__staging" in tables_like(target, prefix), "both staging tables", runner)
    wait_for(lambda: lock_session(target, pipeline) is not None, "the run lock", runner)
    kill_session(target, lock_session(target, pipeline))
    run = finished(runner)
    assert run.returncode == 3, run.explain()
    assert len(run.error_lines) == 1 and "run lock" in run.error_lines[0] \
        and "nothing was published" in run.error_lines[0], run.explain()
    assert "Traceback" not in run.stderr
    sql("postgresql", f'drop table "{prefix}_src"')
    published_before(target, prefix)


def test_a_publishing_connection_killed_while_the_swap_retries_publishes_nothing(
        tmp_path: Path, prefix: str) -> None:
    """MySQL publishes on the lock's connection: killing it while the RENAME waits for a reader
    ends the lock and the publish together, appends included."""
    pipeline = mixed_pipeline(tmp_path, prefix, "mysql", publish_timeout=90)
    with open_reader("mysql", f"{prefix}_over"):
        runner = Runner(pipeline)
        wait_for(lambda: WAITS in runner.stderr_so_far(), "the publish to wait for the reader", runner)
        kill_session("mysql", lock_session("mysql", pipeline))
        run = finished(runner)
    assert run.returncode == 3, run.explain()
    assert len(run.error_lines) == 1 and "nothing was published" in run.error_lines[0], run.explain()
    sql("postgresql", f'drop table "{prefix}_src"')
    published_before("mysql", prefix)
