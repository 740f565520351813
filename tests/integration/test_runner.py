"""`python -m runner run` against the real PostgreSQL and MariaDB, as a subprocess.

Every test works on tables of its own: a scratch source table `t_<random>_src` in the
PostgreSQL app schema, and targets `t_<random>_*` in MySQL or PostgreSQL, all dropped
afterwards. Pipelines are copies of the templates in tests/fixtures/runner/ (modes, copy)
with those names filled in, sometimes with one extra file.

Spark starts slowly here (20-60 s per run), so runs are shared: the `modes` runs happen once
per target in a module fixture (local[*], then the standalone cluster on the same input, then
local[*] on a changed source), and the tests assert on what they left behind.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from runner import config
from runner.targets.base import target_for
from tests.fixtures.runner.pipelines import from_template, settings_toml, write_pipeline

pytestmark = pytest.mark.integration

ROOT = config.ROOT
STANDALONE = "spark://localhost:7077"
RUN_TIMEOUT = 1200  # seconds; a bound for a hung run, not a performance assertion

# The scratch source: (id, name, amount, created_at)
FIRST_ROWS = [
    (1, "Ann", Decimal("10.50"), dt.datetime(2024, 5, 1, 10, 15)),
    (2, "Bob", Decimal("0.99"), dt.datetime(2023, 12, 31, 23, 59, 59, 123456)),
    (3, "Catherine Zeta Longname-Example", Decimal("12345678.90"), None),
]
# The source after `change_source`: 1 changed, 2 deleted, 4 new.
CHANGED_ROWS = [
    (1, "Ann Lee", Decimal("11.00"), dt.datetime(2024, 5, 1, 10, 15)),
    FIRST_ROWS[2],
    (4, "Dan", Decimal("4.00"), dt.datetime(2024, 6, 1)),
]


# --- databases -------------------------------------------------------------------------------

def connect(kind: str):
    """An autocommit connection; MySQL's session in UTC, as the runner writes timestamps."""
    conn = config.connection(kind).connect()
    if kind == "mysql":
        conn.autocommit(True)
        with conn.cursor() as cursor:
            cursor.execute("set time_zone = '+00:00'")
    else:
        conn.autocommit = True
    return conn


def sql(kind: str, statement: str, args: tuple | list | None = None) -> list[tuple]:
    conn = connect(kind)
    try:
        with conn.cursor() as cursor:
            if isinstance(args, list):
                cursor.executemany(statement, args)
                return []
            cursor.execute(statement, args)
            return list(cursor.fetchall()) if cursor.description else []
    finally:
        conn.close()


def q(kind: str, name: str) -> str:
    return f"`{name}`" if kind == "mysql" else f'"{name}"'


def rows(kind: str, table: str) -> list[tuple]:
    """Every row of `table`, sorted, as plain tuples."""
    return sorted(tuple(r) for r in sql(kind, f"select * from {q(kind, table)}"))


def tables_like(kind: str, prefix: str) -> list[str]:
    where = ("table_schema = %s", config.env("MYSQL_APP_DB")) if kind == "mysql" else \
        ("table_schema = %s", config.env("POSTGRESQL_APP_SCHEMA"))
    found = sql(kind, f"select table_name from information_schema.tables where {where[0]} and table_name like %s",
                (where[1], prefix.replace("_", r"\_") + "%"))
    return sorted(r[0] for r in found)


def drop_tables(prefix: str) -> None:
    for kind in ("mysql", "postgresql"):
        for table in tables_like(kind, prefix):
            sql(kind, f"drop table if exists {q(kind, table)}")


def create_source(prefix: str, source_rows: list[tuple] | None = None, generated: int = 0) -> str:
    """The scratch PostgreSQL source table `<prefix>_src`: given rows, or `generated` rows."""
    table = f"{prefix}_src"
    sql("postgresql", f'create table "{table}" (id integer primary key, name varchar(60), '
                      'amount numeric(10,2), created_at timestamp)')
    if source_rows:
        sql("postgresql", f'insert into "{table}" values (%s, %s, %s, %s)', list(source_rows))
    if generated:
        sql("postgresql", f"""insert into "{table}"
            select n, 'name ' || n, mod(n, 1000) + 0.25, timestamp '2024-01-01' + n * interval '1 minute'
            from generate_series(1, %s) as n""", (generated,))
    return table


def change_source(prefix: str) -> None:
    table = f'"{prefix}_src"'
    sql("postgresql", f"update {table} set name = 'Ann Lee', amount = 11.00 where id = 1")
    sql("postgresql", f"delete from {table} where id = 2")
    sql("postgresql", f"insert into {table} values (4, 'Dan', 4.00, '2024-06-01 00:00:00')")


def mysql_table(name: str, columns: str, values: list[tuple]) -> None:
    """A table as a previous run would have published it."""
    sql("mysql", f"create table `{name}` ({columns})")
    if values:
        marks = ", ".join(["%s"] * len(values[0]))
        sql("mysql", f"insert into `{name}` values ({marks})", values)


# --- running the runner ----------------------------------------------------------------------

def passwords() -> dict[str, str]:
    return {key: config.env(key) for key in ("POSTGRESQL_APP_PASSWORD", "MYSQL_APP_PASSWORD")}


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process we may read."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        found[int(entry.name)] = (parent, cmdline)
    return found


def leaked_command_lines(root: int, secrets: dict[str, str]) -> list[str]:
    """Command lines holding one of `secrets`: of `root`, its descendants, and Spark executors."""
    processes = _processes()
    family = {root}
    changed = True
    while changed:
        changed = False
        for pid, (parent, _) in processes.items():
            if parent in family and pid not in family:
                family.add(pid)
                changed = True
    leaks = []
    for pid, (_, cmdline) in processes.items():
        if pid in family or b"CoarseGrainedExecutorBackend" in cmdline:
            text = cmdline.replace(b"\0", b" ").decode(errors="replace")
            for key, value in secrets.items():
                if value in text:
                    leaks.append(f"pid {pid} holds {key}: {text.replace(value, '***')[:300]}")
    return leaks


@dataclass
class Run:
    """One finished runner process."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    leaks: list[str] = field(default_factory=list)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]

    def explain(self) -> str:
        return f"runner {' '.join(self.args)} exited {self.returncode}:\n{self.stderr[-4000:]}"


class Runner:
    """A runner process started in its own session, its output going to files."""

    def __init__(self, pipeline: Path, *args: str, **env: str):
        self.args = ["run", str(pipeline), *args]
        self.out = tempfile.NamedTemporaryFile("w+", prefix="runner-out-", delete=False)
        self.err = tempfile.NamedTemporaryFile("w+", prefix="runner-err-", delete=False)
        self.process = subprocess.Popen([sys.executable, "-m", "runner", *self.args], cwd=ROOT,
                                        env={**os.environ, "SPARK_MASTER_URL": "local[*]", **env},
                                        stdout=self.out, stderr=self.err, start_new_session=True)
        self.leaks: list[str] = []

    def stderr_so_far(self) -> str:
        return Path(self.err.name).read_text(errors="replace")

    def running(self) -> bool:
        if self.process.poll() is None:
            for leak in leaked_command_lines(self.process.pid, passwords()):
                if leak not in self.leaks:
                    self.leaks.append(leak)
            return True
        return False

    def kill(self) -> None:
        """SIGKILL the runner and everything it started (its process group)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=120)

    def finish(self, timeout: float = RUN_TIMEOUT) -> Run:
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"runner {' '.join(self.args)} still running after {timeout}s:\n"
                            f"{self.stderr_so_far()[-3000:]}")
            time.sleep(0.2)
        run = Run(self.args, self.process.returncode, Path(self.out.name).read_text(errors="replace"),
                  self.stderr_so_far(), self.leaks)
        for handle in (self.out, self.err):
            handle.close()
            os.unlink(handle.name)
        return run


def run_runner(pipeline: Path, *args: str, **env: str) -> Run:
    return Runner(pipeline, *args, **env).finish()


def wait_for(condition, what: str, runner: Runner | None = None, timeout: float = RUN_TIMEOUT) -> None:
    """Poll until `condition()` holds; fail if the runner ends first or after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if runner is not None and not runner.running():
            pytest.fail(f"the runner ended before {what}:\n{runner.stderr_so_far()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def new_prefix() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh table-name prefix; every table starting with it is dropped afterwards."""
    name = new_prefix()
    yield name
    drop_tables(name)


def pipeline_dir(tmp_path: Path, prefix: str) -> Path:
    # The directory name is the pipeline's name (and its lock's): unique per test.
    return tmp_path / f"rt_{prefix}"


# --- the modes pipeline: a view, overwrite, append, merge and a check --------------------------

@dataclass
class ModesRuns:
    target: str
    prefix: str
    runs: dict[str, Run]
    tables: dict[str, dict[str, list[tuple]]]  # run name -> table suffix -> rows
    columns: dict[str, dict[str, tuple]]       # table suffix -> column -> (type, nullable, key)

    def ok(self, name: str) -> Run:
        run = self.runs[name]
        assert run.returncode == 0, run.explain()
        return run


def column_types(kind: str, table: str) -> dict[str, tuple]:
    if kind == "mysql":
        found = sql("mysql", "select column_name, column_type, is_nullable, column_key "
                             "from information_schema.columns where table_schema = %s and table_name = %s",
                    (config.env("MYSQL_APP_DB"), table))
        return {name: (kind_.lower(), nullable, key) for name, kind_, nullable, key in found}
    found = sql("postgresql", """
        select c.column_name,
               case when c.character_maximum_length is not null
                        then c.data_type || '(' || c.character_maximum_length || ')'
                    when c.data_type = 'numeric'
                        then 'numeric(' || c.numeric_precision || ',' || c.numeric_scale || ')'
                    else c.data_type end,
               c.is_nullable,
               case when k.column_name is not null then 'PRI' else '' end
        from information_schema.columns c
        left join information_schema.table_constraints t
            on t.table_schema = c.table_schema and t.table_name = c.table_name
            and t.constraint_type = 'PRIMARY KEY'
        left join information_schema.key_column_usage k
            on k.constraint_name = t.constraint_name and k.table_schema = c.table_schema
            and k.table_name = c.table_name and k.column_name = c.column_name
        where c.table_schema = %s and c.table_name = %s""", (config.env("POSTGRESQL_APP_SCHEMA"), table))
    return {name: (kind_, nullable, key) for name, kind_, nullable, key in found}


def modes_runs(target: str, masters: list[tuple[str, str, bool]], tmp: Path) -> Iterator[ModesRuns]:
    """Run the modes pipeline once per (run name, master, change the source first)."""
    prefix = new_prefix()
    try:
        create_source(prefix, FIRST_ROWS)
        pipeline = from_template("modes", tmp / f"rt_{prefix}", source=f"{prefix}_src", target=target,
                                 prefix=prefix)
        result = ModesRuns(target, prefix, {}, {}, {})
        for name, master, change in masters:
            if change:
                change_source(prefix)
            result.runs[name] = run_runner(pipeline, SPARK_MASTER_URL=master)
            result.tables[name] = {suffix: rows(target, f"{prefix}_{suffix}")
                                   for suffix in ("over", "app", "merge")
                                   if f"{prefix}_{suffix}" in tables_like(target, prefix)}
        result.columns = {suffix: column_types(target, f"{prefix}_{suffix}") for suffix in ("over", "app", "merge")}
        yield result
    finally:
        drop_tables(prefix)


@pytest.fixture(scope="module")
def mysql_modes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModesRuns]:
    yield from modes_runs("mysql", [("local", "local[*]", False), ("standalone", STANDALONE, False),
                                    ("changed", "local[*]", True)], tmp_path_factory.mktemp("mysql_modes"))


@pytest.fixture(scope="module")
def postgresql_modes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModesRuns]:
    yield from modes_runs("postgresql", [("local", "local[*]", False), ("changed", "local[*]", True)],
                          tmp_path_factory.mktemp("postgresql_modes"))


@pytest.fixture(params=["mysql", "postgresql"])
def modes(request) -> ModesRuns:
    return request.getfixturevalue(f"{request.param}_modes")


def whole_seconds(table_rows: list[tuple]) -> list[tuple]:
    """Rows with their timestamps cut to the second: tests of other behaviours than the exact
    values stay independent of the microseconds (test_values_round_trip_exactly has those)."""
    return [tuple(v.replace(microsecond=0) if isinstance(v, dt.datetime) else v for v in row) for row in table_rows]


def over_rows(source_rows: list[tuple]) -> list[tuple]:
    """The overwrite's rows for a source: id, label (= name), name, amount, created_at."""
    return sorted((i, name, name, amount, created) for i, name, amount, created in source_rows)


def test_run_publishes_every_write_mode_and_logs_rows_per_file(modes: ModesRuns) -> None:
    run = modes.ok("local")
    tables = modes.tables["local"]
    assert whole_seconds(tables["over"]) == whole_seconds(over_rows(FIRST_ROWS))
    assert tables["app"] == sorted((i, amount) for i, _, amount, _ in FIRST_ROWS)
    assert whole_seconds(tables["merge"]) == whole_seconds(sorted(FIRST_ROWS))
    target, prefix = modes.target, modes.prefix
    for suffix, mode in (("over", "overwrite"), ("app", "append"), ("merge", "merge")):
        assert re.search(rf"3 rows staged for {target}\.{prefix}_{suffix} \({mode}\)\s+\d+\.\ds", run.stderr), \
            run.stderr
    assert re.search(rf"{prefix}_over \(3 rows\)", run.stderr), run.stderr      # the summary
    assert "check passed" in run.stderr


def test_standalone_cluster_gives_the_same_tables_as_local(mysql_modes: ModesRuns) -> None:
    mysql_modes.ok("local")
    mysql_modes.ok("standalone")
    local, standalone = mysql_modes.tables["local"], mysql_modes.tables["standalone"]
    assert standalone["over"] == local["over"]
    assert standalone["merge"] == local["merge"]
    assert standalone["app"] == sorted(local["app"] * 2)  # append: the same rows once more


def test_rerun_of_overwrite_and_merge_is_idempotent(mysql_modes: ModesRuns) -> None:
    mysql_modes.ok("local")
    mysql_modes.ok("standalone")
    first, second = mysql_modes.tables["local"], mysql_modes.tables["standalone"]
    assert (second["over"], second["merge"]) == (first["over"], first["merge"])
    assert whole_seconds(second["over"]) == whole_seconds(over_rows(FIRST_ROWS))
    assert whole_seconds(second["merge"]) == whole_seconds(sorted(FIRST_ROWS))


def test_overwrite_replaces_the_table_with_the_changed_source(modes: ModesRuns) -> None:
    modes.ok("changed")
    assert whole_seconds(modes.tables["changed"]["over"]) == whole_seconds(over_rows(CHANGED_ROWS))


def test_merge_upserts_on_its_keys(modes: ModesRuns) -> None:
    # 1 is updated, 2 (deleted in the source) stays, 3 is unchanged, 4 is inserted; no duplicates.
    modes.ok("changed")
    expected = sorted([CHANGED_ROWS[0], FIRST_ROWS[1], FIRST_ROWS[2], CHANGED_ROWS[2]])
    assert whole_seconds(modes.tables["changed"]["merge"]) == whole_seconds(expected)


def test_append_adds_every_run_rows(modes: ModesRuns) -> None:
    modes.ok("changed")
    runs = [FIRST_ROWS] * (len(modes.runs) - 1) + [CHANGED_ROWS]
    assert modes.tables["changed"]["app"] == sorted((i, a) for batch in runs for i, _, a, _ in batch)


EXPECTED_TYPES = {
    "mysql": {"id": ("int(11)", "NO", "PRI"), "amount": ("decimal(10,2)", "YES", ""),
              "created_at": ("datetime(6)", "YES", ""), "name": ("varchar(60)", "YES", "")},
    "postgresql": {"id": ("integer", "NO", "PRI"), "amount": ("numeric(10,2)", "YES", ""),
                   "created_at": ("timestamp without time zone", "YES", ""),
                   "name": ("character varying(60)", "YES", "")},
}


def test_types_keys_decimals_timestamps_and_inherited_varchar_sizes(modes: ModesRuns) -> None:
    modes.ok("changed")
    expected = EXPECTED_TYPES[modes.target]
    for suffix in ("over", "merge"):
        assert {c: modes.columns[suffix][c] for c in expected} == expected, suffix
    # append has no keys: no primary key, id nullable as in the result
    assert modes.columns["app"]["amount"] == expected["amount"]
    assert modes.columns["app"]["id"][2] == ""


def test_varchar_size_declared_by_a_cast_reaches_the_table(modes: ModesRuns) -> None:
    """020_overwritten.sql says `cast(name as varchar(40)) as label`."""
    modes.ok("local")
    varchar = "varchar(40)" if modes.target == "mysql" else "character varying(40)"
    assert modes.columns["over"]["label"][0] == varchar


def test_values_round_trip_exactly(modes: ModesRuns) -> None:
    """Microseconds, cents, the longest name and a NULL timestamp come back as they went in.
    (MySQL Connector/J drops fractional seconds when the server's handshake version is
    MariaDB's `5.5.5-10.x`, which it reads as 5.5 < 5.6.4.)"""
    modes.ok("local")
    assert modes.tables["local"]["merge"] == sorted(FIRST_ROWS)


def test_no_password_in_any_log_line_or_process_argument(modes: ModesRuns) -> None:
    for name, run in modes.runs.items():
        assert run.leaks == [], f"{name}: {run.leaks}"
        for key, value in passwords().items():
            assert value not in run.stdout + run.stderr, f"the {name} run logged the value of {key}"


def test_leak_scan_finds_a_secret_in_a_descendant_command_line() -> None:
    """The scan above is not vacuous: a made-up secret in a grandchild's arguments is found."""
    token = f"not-a-password-{uuid.uuid4().hex}"
    code = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import time; time.sleep(60)', sys.argv[1]])"
    child = subprocess.Popen([sys.executable, "-c", code, token], start_new_session=True)
    try:
        wait_for(lambda: len(leaked_command_lines(child.pid, {"TOKEN": token})) >= 2, "the grandchild", timeout=60)
        assert all(token not in leak for leak in leaked_command_lines(child.pid, {"TOKEN": token}))
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def test_run_leaves_no_staging_tables(modes: ModesRuns) -> None:
    modes.ok("changed")
    assert [t for t in tables_like(modes.target, modes.prefix) if t.endswith(("__staging", "__old"))] == []


# --- atomic publishing -----------------------------------------------------------------------

WAITING_CHECK = """\
-- mode: check

-- Holds the run between the staging load and the publish: each staged row waits ten minutes
-- before it is judged, so the test can kill the run while the staging table is complete.

select id
from mysql.${prefix}_copy
where java_method('java.lang.Thread', 'sleep', cast(600000 as bigint)) = 'never'
"""

COPY_COLUMNS = "id int not null primary key, name varchar(60), amount decimal(10,2), created_at timestamp(6) null"
OLD_ROWS = [(1000 + i, f"old {i}", Decimal("1.00"), dt.datetime(2020, 1, 1)) for i in range(5)]


def test_run_killed_between_staging_and_swap_leaves_the_old_table_and_next_run_succeeds(
        tmp_path: Path, prefix: str) -> None:
    create_source(prefix, generated=2000)
    mysql_table(f"{prefix}_copy", COPY_COLUMNS, OLD_ROWS)
    pipeline = from_template("copy", pipeline_dir(tmp_path, prefix), source=f"{prefix}_src", target="mysql",
                             prefix=prefix)
    (pipeline / "020_check_waits.sql").write_text(WAITING_CHECK.replace("${prefix}", prefix))

    def staging_complete() -> bool:
        if f"{prefix}_copy__staging" not in tables_like("mysql", prefix):
            return False
        return sql("mysql", f"select count(*) from `{prefix}_copy__staging`")[0][0] == 2000

    runner = Runner(pipeline)
    wait_for(staging_complete, "the staging table to hold all 2000 rows", runner)
    runner.kill()
    assert rows("mysql", f"{prefix}_copy") == sorted(OLD_ROWS)

    (pipeline / "020_check_waits.sql").unlink()
    # The killed run's database session (and its lock) ends when MariaDB sees the socket close.
    lock = target_for(config.connection("mysql"), pipeline.name).lock_name
    wait_for(lambda: sql("mysql", "select is_free_lock(%s)", (lock,))[0][0] == 1,
             "the killed run's lock to be released")
    run = run_runner(pipeline)
    assert run.returncode == 0, run.explain()
    assert sql("mysql", f"select count(*), min(id), max(id) from `{prefix}_copy`")[0] == (2000, 1, 2000)
    assert tables_like("mysql", prefix) == [f"{prefix}_copy"]


def publishes(runner: Runner) -> int:
    """How many runs a `--follow` runner has published so far."""
    return len(re.findall(r": published ", runner.stderr_so_far()))


def stop_following(runner: Runner) -> Run:
    """SIGTERM: --follow finishes the current run and exits."""
    if runner.process.poll() is None:
        runner.process.send_signal(signal.SIGTERM)
    try:
        return runner.finish(timeout=600)
    except BaseException:
        runner.kill()
        raise


def test_follow_runs_back_to_back(tmp_path: Path, prefix: str) -> None:
    """`--follow --every 0` starts each run as soon as the last one ended. The last run's
    database lock must be free by then: closing its session releases it only once the server
    has processed the disconnect, so unlock must release the lock explicitly. (Seen here with a
    5000-row copy: `error: another run of pipeline ... holds its lock` after a few runs, while
    IS_USED_LOCK right after showed the lock free again.)"""
    create_source(prefix, generated=5000)
    pipeline = from_template("copy", pipeline_dir(tmp_path, prefix), source=f"{prefix}_src", target="mysql",
                             prefix=prefix)
    runner = Runner(pipeline, "--follow", "--every", "0")
    try:
        wait_for(lambda: publishes(runner) >= 10, "ten runs", runner)
    finally:
        run = stop_following(runner)
    assert run.returncode == 0, run.explain()


@pytest.mark.parametrize("target", ["mysql", "postgresql"])
def test_reader_never_sees_an_empty_or_partial_table_during_ten_overwrites(
        tmp_path: Path, prefix: str, target: str) -> None:
    size = 5000
    create_source(prefix, generated=size)
    table = f"{prefix}_copy"
    pipeline = from_template("copy", pipeline_dir(tmp_path, prefix), source=f"{prefix}_src", target=target,
                             prefix=prefix)
    # --every 1, not 0: back-to-back runs can trip over the previous run's lock (see
    # test_follow_runs_back_to_back), which is not what this test is about.
    runner = Runner(pipeline, "--follow", "--every", "1")
    published = lambda: publishes(runner)  # noqa: E731

    seen: list[tuple] = []
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        conn = connect(target)
        try:
            while not stop.is_set():
                try:
                    with conn.cursor() as cursor:
                        cursor.execute(f"select count(*), sum(id) from {q(target, table)}")
                        seen.append(tuple(int(v or 0) for v in cursor.fetchone()))
                except Exception as error:  # any failed read is a finding, not a crash of the test
                    errors.append(f"{type(error).__name__}: {error}")
                    if len(errors) > 20:
                        return
        finally:
            conn.close()

    reader = threading.Thread(target=read, daemon=True)
    try:
        wait_for(lambda: published() >= 1, "the first publish", runner)
        reader.start()
        first = published()
        wait_for(lambda: published() >= first + 10, "ten more overwrites", runner)
    finally:
        stop.set()
        reader.join(timeout=60)
        run = stop_following(runner)
    assert errors == []
    assert len(seen) > 10
    assert set(seen) == {(size, size * (size + 1) // 2)}, sorted(set(seen))[:10]
    assert run.returncode == 0, run.explain()
    assert run.leaks == []


def test_failed_publish_leaves_every_published_table_unchanged(tmp_path: Path, prefix: str) -> None:
    """Two appends: the second collides with a key already published, so the publish fails.
    The first append must not be visible either (MySQL commits implicitly on DDL)."""
    create_source(prefix, FIRST_ROWS)
    columns = "id int not null primary key, amount decimal(10,2)"
    mysql_table(f"{prefix}_first", columns, [])
    mysql_table(f"{prefix}_second", columns, [(1, Decimal("99.00"))])
    files = {
        f"010_{prefix}_first.sql": "-- mode: append\n-- keys: id\n\nselect id, amount from " + f"{prefix}_src\n",
        f"020_{prefix}_second.sql": "-- mode: append\n-- keys: id\n\nselect id, amount from " + f"{prefix}_src\n",
    }
    pipeline = write_pipeline(pipeline_dir(tmp_path, prefix), files, settings_toml(tables=(f"{prefix}_src",)))
    run = run_runner(pipeline, "--workers", "1")   # one worker: staged, and published, in file order
    assert run.returncode == 1, run.explain()
    assert run.error_lines and "publishing" in run.error_lines[0], run.explain()
    assert rows("mysql", f"{prefix}_second") == [(1, Decimal("99.00"))]
    assert rows("mysql", f"{prefix}_first") == [], "the first append was published by a failed run"


def test_check_reads_the_staged_copy_even_after_an_earlier_file_read_the_published_one(
        tmp_path: Path, prefix: str) -> None:
    """005 reads the published mysql.<t>_copy (e.g. to compare before/after); 010 rewrites it;
    the check after 010 must see the staged copy about to be published, not the old table."""
    create_source(prefix, FIRST_ROWS)
    mysql_table(f"{prefix}_copy", COPY_COLUMNS, OLD_ROWS)
    pipeline = from_template("copy", pipeline_dir(tmp_path, prefix), source=f"{prefix}_src", target="mysql",
                             prefix=prefix)
    (pipeline / "005_rows_before.sql").write_text(
        f"-- mode: view\n\nselect count(*) as rows_before\nfrom mysql.{prefix}_copy\n")
    (pipeline / "900_check_copy_is_complete.sql").write_text(
        f"-- mode: check\n\nselect source.id\nfrom {prefix}_src as source\n"
        f"left join mysql.{prefix}_copy as staged\n    on source.id = staged.id\nwhere staged.id is null\n")
    run = run_runner(pipeline, "--workers", "1")
    assert run.returncode == 0, run.explain()
    assert [r[0] for r in rows("mysql", f"{prefix}_copy")] == [1, 2, 3]


UUID = "reflect('java.util.UUID', 'randomUUID')"


def test_results_read_by_later_files_are_computed_once(tmp_path: Path, prefix: str) -> None:
    """A view two later files read, and a written result a check reads, are each one snapshot:
    random UUIDs (drawn per row as it is computed) would come out anew from a second
    computation. The files use CTEs, as the
    house style does (a CTE with a filter hides a cached DataFrame from Spark's plan matching)."""
    create_source(prefix, FIRST_ROWS)
    copy = ("-- mode: overwrite\n-- keys: id\n\n"
            "with drawn as (\n    select id, draw from draws\n)\n\nselect * from drawn\n")
    files = {
        "010_draws.sql": f"-- mode: view\n\nselect id, {UUID} as draw\nfrom {prefix}_src\n",
        f"020_{prefix}_a.sql": copy,
        f"030_{prefix}_b.sql": copy,
        f"040_{prefix}_sums.sql": (f"-- mode: overwrite\n-- keys: id\n\n"
                                   f"select id, concat('sum ', {UUID}) as draw\nfrom {prefix}_src\n"),
        "900_check_sums_staged_as_computed.sql": (
            f"-- mode: check\n\nwith computed as (\n    select * from {prefix}_sums where id > 0\n)\n\n"
            f"select computed.id\nfrom computed\nleft join mysql.{prefix}_sums as staged\n"
            "    on computed.id = staged.id and computed.draw = staged.draw\nwhere staged.id is null\n"),
    }
    pipeline = write_pipeline(pipeline_dir(tmp_path, prefix), files, settings_toml(tables=(f"{prefix}_src",)))
    run = run_runner(pipeline)
    assert run.returncode == 0, run.explain()
    first, second = rows("mysql", f"{prefix}_a"), rows("mysql", f"{prefix}_b")
    assert len(first) == len(FIRST_ROWS)
    assert first == second


# --- failures --------------------------------------------------------------------------------

FAILING_FILES = {
    "failing check": ("900_check_fails.sql", """\
-- mode: check

-- Fails on purpose: every staged row is offending.

select
    id,
    label
from mysql.${prefix}_over
"""),
    "broken SQL": ("900_broken.sql", """\
-- target: ${prefix}_broken
-- mode: overwrite

-- Valid for sqlglot, but Spark cannot resolve the column: it fails at run time.
select
    no_such_column
from mysql.${prefix}_over
"""),
}


@pytest.mark.parametrize("failure", list(FAILING_FILES))
def test_failing_run_exits_1_naming_the_file_and_leaves_published_tables_unchanged(
        tmp_path: Path, prefix: str, failure: str) -> None:
    create_source(prefix, FIRST_ROWS)
    published = {
        "over": ("id int not null primary key, label varchar(40), name varchar(60), amount decimal(10,2), "
                 "created_at timestamp(6) null", [(9, "old", "old", Decimal("9.00"), None)]),
        "app": ("id int, amount decimal(10,2)", [(9, Decimal("9.00"))]),
        "merge": ("id int not null primary key, name varchar(60), amount decimal(10,2), created_at timestamp(6) null",
                  [(1, "old", Decimal("9.00"), None)]),
    }
    for suffix, (columns, values) in published.items():
        mysql_table(f"{prefix}_{suffix}", columns, values)
    pipeline = from_template("modes", pipeline_dir(tmp_path, prefix), source=f"{prefix}_src", target="mysql",
                             prefix=prefix)
    name, text = FAILING_FILES[failure]
    (pipeline / name).write_text(text.replace("${prefix}", prefix))

    run = run_runner(pipeline)

    assert run.returncode == 1, run.explain()
    assert len(run.error_lines) == 1, run.explain()
    assert str(pipeline / name) in run.error_lines[0], run.explain()
    assert "Traceback" not in run.stderr
    if failure == "broken SQL":
        assert f"{name}:6:" in run.error_lines[0] and "no_such_column" in run.error_lines[0], run.error_lines
        assert run.stderr.rstrip().splitlines()[-1] == run.error_lines[0]    # one line, and the last
    else:
        assert "3 offending row(s)" in run.error_lines[0], run.explain()
    for suffix, (_, values) in published.items():
        assert rows("mysql", f"{prefix}_{suffix}") == sorted(values), suffix
    assert sorted(tables_like("mysql", prefix)) == sorted(f"{prefix}_{s}" for s in published)


def test_unreachable_target_exits_3_naming_host_and_port(tmp_path: Path, prefix: str) -> None:
    port = closed_port()
    pipeline = from_template("copy", pipeline_dir(tmp_path, prefix), source=f"{prefix}_src", target="mysql",
                             prefix=prefix)
    run = run_runner(pipeline, MYSQL_APP_PORT=str(port))
    assert run.returncode == 3, run.explain()
    assert len(run.error_lines) == 1 and f"{config.env('MYSQL_APP_HOST')}:{port}" in run.error_lines[0], \
        run.explain()


def test_unreachable_source_exits_3_naming_host_and_port(tmp_path: Path, prefix: str) -> None:
    port = closed_port()
    pipeline = from_template("copy", pipeline_dir(tmp_path, prefix), source=f"{prefix}_src", target="mysql",
                             prefix=prefix)
    run = run_runner(pipeline, POSTGRESQL_APP_PORT=str(port))
    assert run.returncode == 3, run.explain()
    assert len(run.error_lines) == 1 and f"{config.env('POSTGRESQL_APP_HOST')}:{port}" in run.error_lines[0], \
        run.explain()
    assert tables_like("mysql", prefix) == []


# --- the grain a `keys` header declares ----------------------------------------------------------

BROKEN_GRAINS = {
    # target kind, the key expression, and the keys the error must show
    "a duplicate key": ("mysql", "id % 2", ["{'id': 1, 'rows': 2}"]),
    "a NULL key": ("postgresql", "nullif(id, 2)", ["{'id': None, 'rows': 1}"]),
}


@pytest.mark.parametrize("broken", list(BROKEN_GRAINS))
def test_a_result_that_breaks_its_keys_fails_showing_the_keys_and_publishes_nothing(
        tmp_path: Path, prefix: str, broken: str) -> None:
    kind, key, shown = BROKEN_GRAINS[broken]
    create_source(prefix, FIRST_ROWS)
    table = f"{prefix}_grain"
    sql(kind, f"create table {q(kind, table)} (id int primary key, name varchar(60))")
    sql(kind, f"insert into {q(kind, table)} values (9, 'published before')")
    pipeline = write_pipeline(pipeline_dir(tmp_path, prefix), {
        "010_grain.sql": f"-- target: {table}\n-- keys: id\n\nselect\n    {key} as id,\n    name\nfrom {prefix}_src\n",
    }, settings_toml(tables=(f"{prefix}_src",), target=kind))

    run = run_runner(pipeline)

    assert run.returncode == 1, run.explain()
    message = run.stderr[run.stderr.index("error:"):]
    assert f"{table} is not unique on its keys (id) or has a NULL key" in message, run.explain()
    assert all(key_row in message for key_row in shown), run.explain()
    assert rows(kind, table) == [(9, "published before")]
    assert f"{table}__staging" not in tables_like(kind, prefix)
