"""The local platform that `make up` starts: databases, init, Kafka, Spark and port conflicts.

These run against the real services (`make up` first; `make test` does it). They create only
uniquely named scratch objects (tables, schemas, topics, a Spark application) and remove them;
the shared services are never stopped or restarted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from psycopg2 import sql

from runner import config

ROOT = config.ROOT
PYTHON = ROOT / ".venv" / "bin" / "python"
PIDS = ROOT / ".state" / "pids"

# The source tables of DESIGN.md with their columns in order, primary and foreign keys.
SOURCE_COLUMNS = {
    "product_categories": ["category_id", "name", "parent_category_id"],
    "users": ["user_id", "first_name", "last_name", "email", "phone", "registration_date", "loyalty_status"],
    "products": ["product_id", "name", "description", "category_id", "price", "stock_quantity", "creation_date"],
    "orders": ["order_id", "user_id", "order_date", "total_amount", "status", "delivery_date"],
    "order_details": ["order_detail_id", "order_id", "product_id", "quantity", "price_per_unit", "total_price"],
}
SOURCE_TABLES = sorted(SOURCE_COLUMNS)
PRIMARY_KEYS = {
    "product_categories": ["category_id"],
    "users": ["user_id"],
    "products": ["product_id"],
    "orders": ["order_id"],
    "order_details": ["order_detail_id"],
}
FOREIGN_KEYS = {  # (table, column) -> (referenced table, referenced column)
    ("product_categories", "parent_category_id"): ("product_categories", "category_id"),
    ("products", "category_id"): ("product_categories", "category_id"),
    ("orders", "user_id"): ("users", "user_id"),
    ("order_details", "order_id"): ("orders", "order_id"),
    ("order_details", "product_id"): ("products", "product_id"),
}


def unique(prefix: str) -> str:
    """A name no other test run uses: `prefix` plus random hex."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def run(command: list[str], cwd: Path = ROOT, **overrides: str) -> subprocess.CompletedProcess:
    """Run `command` with `overrides` added to the environment; output captured as text."""
    return subprocess.run(command, cwd=cwd, env={**os.environ, **overrides},
                          capture_output=True, text=True, timeout=600)


def initdb(*targets: str, **overrides: str) -> None:
    """`bash local/initdb.sh [targets]` with environment overrides; it must succeed."""
    result = run(["bash", "local/initdb.sh", *targets], **overrides)
    assert result.returncode == 0, f"local/initdb.sh failed:\n{result.stdout}{result.stderr}"


def running_services() -> dict[str, int]:
    """The platform's services whose PID file names a live process: name -> pid."""
    alive = {}
    for pid_file in PIDS.glob("*.pid"):
        pid = int(pid_file.read_text().strip())
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive[pid_file.stem] = pid
    return alive


def differences(before: dict, after: dict, path: str = "") -> dict[str, tuple]:
    """The entries of two nested snapshots that differ: "a/b" -> (before, after)."""
    changed = {}
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changed.update(differences(old, new, f"{path}{key}/"))
        elif old != new:
            changed[f"{path}{key}"] = (old, new)
    return changed


def query(cursor, statement, params=None) -> list[tuple]:
    """All rows of `statement`, values as strings (stable to compare and print)."""
    cursor.execute(statement, params)
    return [tuple(None if v is None else str(v) for v in row) for row in cursor.fetchall()]


# --- databases accept the app user ------------------------------------------------------------

def test_postgresql_accepts_the_app_user_from_env(pg):
    with pg.cursor() as cur:
        cur.execute("select current_user, current_database(), current_schema()")
        assert cur.fetchone() == (config.env("POSTGRESQL_APP_USER"), config.env("POSTGRESQL_APP_DB"),
                                  config.env("POSTGRESQL_APP_SCHEMA"))


def test_mysql_accepts_the_app_user_from_env(mysql):
    with mysql.cursor() as cur:
        cur.execute("select substring_index(current_user(), '@', 1), database()")
        assert cur.fetchone() == (config.env("MYSQL_APP_USER"), config.env("MYSQL_APP_DB"))


# --- the source tables and their keys ---------------------------------------------------------

def test_source_tables_exist_with_their_columns(pg):
    with pg.cursor() as cur:
        cur.execute(
            "select table_name, array_agg(column_name::text order by ordinal_position) "
            "from information_schema.columns "
            "where table_schema = current_schema() and table_name = any(%s) group by table_name",
            (SOURCE_TABLES,))
        assert dict(cur.fetchall()) == SOURCE_COLUMNS


def test_source_tables_have_their_primary_keys(pg):
    with pg.cursor() as cur:
        cur.execute(
            "select c.conrelid::regclass::text, "
            "       array_agg(a.attname::text order by k.ordinality) "
            "from pg_constraint c "
            "cross join unnest(c.conkey) with ordinality as k(attnum, ordinality) "
            "join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum "
            "where c.contype = 'p' and c.connamespace = current_schema()::regnamespace "
            "  and c.conrelid::regclass::text = any(%s) "
            "group by c.conrelid",
            (SOURCE_TABLES,))
        assert dict(cur.fetchall()) == PRIMARY_KEYS


def test_source_tables_have_their_foreign_keys(pg):
    with pg.cursor() as cur:
        cur.execute(
            "select c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, ra.attname "
            "from pg_constraint c "
            "join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1] "
            "join pg_attribute ra on ra.attrelid = c.confrelid and ra.attnum = c.confkey[1] "
            "where c.contype = 'f' and cardinality(c.conkey) = 1 "
            "  and c.connamespace = current_schema()::regnamespace "
            "  and c.conrelid::regclass::text = any(%s)",
            (SOURCE_TABLES,))
        assert {(t, c): (rt, rc) for t, c, rt, rc in cur.fetchall()} == FOREIGN_KEYS


def test_users_email_is_unique(pg):
    with pg.cursor() as cur:
        cur.execute(
            "select pg_get_constraintdef(oid) from pg_constraint "
            "where contype = 'u' and conrelid = 'users'::regclass")
        assert ("UNIQUE (email)",) in cur.fetchall()


def test_mysql_app_user_can_create_rename_and_drop_tables(mysql):
    # The runner publishes by loading a staging table and swapping it in with one RENAME TABLE.
    live, staged, old = unique("test_platform_live"), unique("test_platform_staged"), unique("test_platform_old")
    try:
        with mysql.cursor() as cur:
            cur.execute(f"create table `{live}` (id int primary key, label varchar(20))")
            cur.execute(f"insert into `{live}` values (1, 'old')")
            cur.execute(f"create table `{staged}` like `{live}`")
            cur.execute(f"insert into `{staged}` values (1, 'new'), (2, 'new')")
            mysql.commit()
            cur.execute(f"rename table `{live}` to `{old}`, `{staged}` to `{live}`")
            cur.execute(f"select label, count(*) from `{live}` group by label")
            assert cur.fetchall() == (("new", 2),)
            cur.execute(f"drop table `{old}`")
            cur.execute(f"drop table `{live}`")
            cur.execute("select count(*) from information_schema.tables "
                        "where table_schema = database() and table_name in (%s, %s, %s)", (live, staged, old))
            assert cur.fetchone() == (0,)
    finally:
        with mysql.cursor() as cur:
            for table in (live, staged, old):
                cur.execute(f"drop table if exists `{table}`")


# --- the database init is idempotent ----------------------------------------------------------

def pg_snapshot(cur, schema: str) -> dict[str, list[tuple]]:
    """The catalog of the app role, its database and `schema`'s source tables, with their data."""
    tables = {"schema": schema, "tables": SOURCE_TABLES}
    snapshot = {
        "role": query(cur, "select rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, "
                           "rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil "
                           "from pg_roles where rolname = current_user"),
        "role settings": query(cur, "select setdatabase, setconfig from pg_db_role_setting "
                                    "where setrole = (select oid from pg_roles where rolname = current_user) "
                                    "order by 1"),
        "database": query(cur, "select datname, pg_get_userbyid(datdba), pg_encoding_to_char(encoding), "
                               "datcollate, datctype, datacl from pg_database where datname = current_database()"),
        "schema": query(cur, "select nspname, pg_get_userbyid(nspowner), nspacl from pg_namespace "
                             "where nspname = %(schema)s", tables),
        "default privileges": query(cur, "select pg_get_userbyid(defaclrole), defaclobjtype, defaclacl "
                                         "from pg_default_acl where defaclnamespace = %(schema)s::regnamespace "
                                         "order by 1, 2", tables),
        # The tables, their indexes and serial sequences: kind, owner and grants.
        "relations": query(cur, """
            with t as (select oid from pg_class
                       where relnamespace = %(schema)s::regnamespace and relname = any(%(tables)s))
            select c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relacl, s.seqtypid::regtype,
                   s.seqstart, s.seqincrement, s.seqmax
            from pg_class c left join pg_sequence s on s.seqrelid = c.oid
            where c.oid in (select oid from t)
               or c.oid in (select indexrelid from pg_index where indrelid in (select oid from t))
               or c.oid in (select objid from pg_depend where classid = 'pg_class'::regclass
                            and refobjid in (select oid from t) and deptype in ('a', 'i'))
            order by c.relname""", tables),
        "columns": query(cur, "select table_name, ordinal_position, column_name, data_type, "
                              "character_maximum_length, numeric_precision, numeric_scale, is_nullable, "
                              "column_default from information_schema.columns "
                              "where table_schema = %(schema)s and table_name = any(%(tables)s) "
                              "order by 1, 2", tables),
        "constraints": query(cur, "select conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) "
                                  "from pg_constraint where connamespace = %(schema)s::regnamespace "
                                  "and conrelid in (select oid from pg_class where relname = any(%(tables)s) "
                                  "and relnamespace = %(schema)s::regnamespace) order by 1, 2", tables),
        "indexes": query(cur, "select tablename, indexname, indexdef from pg_indexes "
                              "where schemaname = %(schema)s and tablename = any(%(tables)s) order by 1, 2",
                         tables),
    }
    for table in SOURCE_TABLES:
        snapshot[f"data {table}"] = query(cur, sql.SQL(
            "select count(*), md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) "
            "from {}.{} as t").format(sql.Identifier(schema), sql.Identifier(table)))
        cur.execute("select last_value from pg_sequences where schemaname = %s and sequencename = "
                    "(select relname from pg_class where oid = pg_get_serial_sequence(%s, %s)::regclass)",
                    (schema, f"{schema}.{table}", SOURCE_COLUMNS[table][0]))
        snapshot[f"data {table}"].append(("sequence last_value", str(cur.fetchone())))
    return snapshot


def mysql_snapshot(cur, keep_table: str) -> dict[str, list[tuple]]:
    """The app database's settings, the app user's grants, and one table of rows with its data."""
    grants = []
    for (grant,) in query(cur, "show grants"):
        # Keep the password hash comparable without printing it.
        grants.append(re.sub(r"PASSWORD '([^']*)'",
                             lambda m: f"PASSWORD sha256:{hashlib.sha256(m.group(1).encode()).hexdigest()[:12]}",
                             grant))
    return {
        "database": query(cur, "select schema_name, default_character_set_name, default_collation_name "
                               "from information_schema.schemata where schema_name = database()"),
        "grants": sorted(grants),
        "schema privileges": query(cur, "select grantee, table_schema, privilege_type, is_grantable "
                                        "from information_schema.schema_privileges order by 1, 2, 3"),
        "table": query(cur, f"show create table `{keep_table}`"),
        "data": query(cur, f"checksum table `{keep_table}` extended"),
    }


@pytest.fixture
def mysql_rows(mysql) -> Iterator[str]:
    """A scratch MySQL table holding a few rows; dropped afterwards."""
    table = unique("test_platform_keep")
    with mysql.cursor() as cur:
        cur.execute(f"create table `{table}` (id int primary key, price decimal(10,2), label varchar(20))")
        cur.execute(f"insert into `{table}` values (1, 9.99, 'one'), (2, 0.01, 'two')")
    mysql.commit()
    yield table
    with mysql.cursor() as cur:
        cur.execute(f"drop table if exists `{table}`")


def test_init_twice_leaves_catalog_and_data_unchanged(pg, mysql, mysql_rows):
    schema = config.env("POSTGRESQL_APP_SCHEMA")
    initdb()  # the state `make up` leaves; then every further run must change nothing

    def snapshot() -> dict:
        with pg.cursor() as pg_cur, mysql.cursor() as mysql_cur:
            state = {"postgresql": pg_snapshot(pg_cur, schema), "mysql": mysql_snapshot(mysql_cur, mysql_rows)}
        pg.rollback()
        mysql.rollback()  # a fresh snapshot of what others committed since
        return state

    before = snapshot()
    initdb()
    after_first = snapshot()
    initdb()
    after_second = snapshot()
    assert differences(before, after_first) == {}
    assert differences(before, after_second) == {}


@pytest.fixture
def scratch_schema(pg) -> Iterator[str]:
    """The name of a PostgreSQL schema for one test; dropped afterwards."""
    schema = unique("test_platform")
    yield schema
    pg.rollback()
    with pg.cursor() as cur:
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
    pg.commit()


def insert_sample_rows(pg, schema: str) -> None:
    """One row in each source table of `schema`, linked by their foreign keys."""
    statements = [
        "insert into {}.product_categories (name) values ('Books')",
        "insert into {}.product_categories (name, parent_category_id) values ('Novels', 1)",
        "insert into {}.users (first_name, last_name, email, phone, registration_date, loyalty_status) "
        "values ('Ann', 'Lee', 'ann@example.com', '+1 555 0100', '2024-01-02 03:04:05', 'Gold')",
        "insert into {}.products (name, description, category_id, price, stock_quantity, creation_date) "
        "values ('Dune', 'A novel', 2, 12.50, 7, '2024-01-01 00:00:00')",
        "insert into {}.orders (user_id, order_date, total_amount, status) "
        "values (1, '2024-02-01 10:00:00', 25.00, 'Pending')",
        "insert into {}.order_details (order_id, product_id, quantity, price_per_unit, total_price) "
        "values (1, 1, 2, 12.50, 25.00)",
    ]
    with pg.cursor() as cur:
        for statement in statements:
            cur.execute(sql.SQL(statement).format(sql.Identifier(schema)))
    pg.commit()


def test_init_rerun_keeps_the_rows_of_existing_tables(pg, scratch_schema):
    initdb("postgresql", POSTGRESQL_APP_SCHEMA=scratch_schema)
    insert_sample_rows(pg, scratch_schema)
    with pg.cursor() as cur:
        before = pg_snapshot(cur, scratch_schema)
    pg.rollback()
    initdb("postgresql", POSTGRESQL_APP_SCHEMA=scratch_schema)
    initdb("postgresql", POSTGRESQL_APP_SCHEMA=scratch_schema)
    with pg.cursor() as cur:
        after = pg_snapshot(cur, scratch_schema)
    assert before["data users"][0][0] == "1"  # the check below compares real rows
    assert differences(before, after) == {}


def test_init_of_another_schema_leaves_the_app_role_defaults_alone(pg, scratch_schema):
    # DESIGN.md: `POSTGRESQL_APP_SCHEMA=x local/initdb.sh postgresql` prepares a schema for tests;
    # it must not change how the app user's other sessions resolve unqualified table names.
    initdb("postgresql")
    settings = "select setconfig from pg_db_role_setting where setrole = " \
               "(select oid from pg_roles where rolname = current_user)"
    with pg.cursor() as cur:
        before = query(cur, settings)
    pg.rollback()
    initdb("postgresql", POSTGRESQL_APP_SCHEMA=scratch_schema)
    with pg.cursor() as cur:
        assert query(cur, settings) == before


# --- Kafka ------------------------------------------------------------------------------------

def test_kafka_round_trip_of_100_messages():
    servers = config.env("KAFKA_BOOTSTRAP_SERVERS")
    topic = unique("test_platform_round_trip")
    sent = {f"key-{i}".encode(): f"message {i}".encode() for i in range(100)}
    # No auto-creation: a client asking for the topic after its deletion must not bring it back.
    clients = {"bootstrap_servers": servers, "allow_auto_create_topics": False}
    admin = KafkaAdminClient(bootstrap_servers=servers, client_id="test-platform")
    admin.create_topics([NewTopic(topic, 3, 1)])
    producer = KafkaProducer(acks="all", **clients)
    consumer = KafkaConsumer(enable_auto_commit=False, **clients)
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in sent.items()]
        producer.flush()
        assert all(f.succeeded() for f in futures)

        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        assert sum(end.values()) == 100
        received = []
        for _ in range(300):  # a bound on polls, not a timing assertion
            if all(consumer.position(tp) >= end[tp] for tp in partitions):
                break
            for records in consumer.poll(timeout_ms=1000).values():
                received.extend((r.key, r.value) for r in records)
        assert len(received) == 100
        assert dict(received) == sent
    finally:
        producer.close()
        consumer.close()
        admin.delete_topics([topic])
        admin.close()


# --- Spark standalone -------------------------------------------------------------------------

SPARK_JOB = """
import json, sys
from pyspark.sql import SparkSession

spark = (SparkSession.builder.master(sys.argv[1]).appName(sys.argv[2])
         .config("spark.cores.max", "1").config("spark.executor.memory", "512m")
         .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.ui.enabled", "false").getOrCreate())
sc = spark.sparkContext
squares = sc.parallelize(range(1, 101), 4).map(lambda x: x * x).sum()  # Python on the executor
total = spark.range(1, 1001).selectExpr("sum(id) as total").first().total  # SQL on the executor
print(json.dumps({"app_id": sc.applicationId, "master": sc.master, "squares": squares, "total": total}))
spark.stop()
"""


def spark_json(port: str) -> dict:
    """The JSON status page of a Spark master or worker web UI on localhost."""
    with urllib.request.urlopen(f"http://localhost:{port}/json/", timeout=10) as response:
        return json.load(response)


@pytest.mark.slow
def test_pyspark_job_runs_on_the_standalone_worker():
    master = f"spark://localhost:{config.env('SPARK_MASTER_PORT')}"
    name = unique("test_platform_spark")
    # Its own JVM; executors run the same Python as the driver (the venv's, with pyspark).
    result = run([str(PYTHON), "-c", SPARK_JOB, master, name],
                 PYSPARK_PYTHON=str(PYTHON), SPARK_LOCAL_IP="127.0.0.1")
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert (answer["master"], answer["squares"], answer["total"]) == (master, 338350, 500500)
    assert answer["app_id"].startswith("app-"), f"not a standalone application: {answer['app_id']}"

    # The master recorded the application, and the worker ran an executor for it.
    master_ui = config.env("SPARK_MASTER_WEBUI_PORT")
    for _ in range(60):  # the master learns of the application's end asynchronously
        apps = {a["id"]: a for a in spark_json(master_ui)["completedapps"]}
        if answer["app_id"] in apps:
            break
        time.sleep(0.5)
    assert answer["app_id"] in apps, f"the master on port {master_ui} does not list {answer['app_id']}"
    assert (apps[answer["app_id"]]["name"], apps[answer["app_id"]]["state"]) == (name, "FINISHED")
    worker = spark_json(config.env("SPARK_WORKER_WEBUI_PORT"))
    assert answer["app_id"] in {e["appid"] for e in worker["finishedexecutors"] + worker["executors"]}


# --- ports taken by other processes -----------------------------------------------------------

@pytest.fixture
def port_holder() -> Iterator[tuple[subprocess.Popen, int]]:
    """Another process listening on a free loopback port: (process, port)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import socket, time\n"
         "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
         "print(s.getsockname()[1], flush=True)\n"
         "while True: s.accept()[0].close()\n"],
        stdout=subprocess.PIPE, text=True)
    port = int(holder.stdout.readline())
    yield holder, port
    holder.terminate()
    holder.wait()


def assert_still_listening(holder: subprocess.Popen, port: int) -> None:
    """The process holding `port` still runs and still accepts connections."""
    assert holder.poll() is None, "the process holding the port was stopped"
    with socket.create_connection(("127.0.0.1", port), timeout=10):
        pass


def test_start_service_refuses_a_port_taken_by_another_process(port_holder):
    holder, port = port_holder
    name = unique("test-port-taken")
    pid_file = PIDS / f"{name}.pid"
    try:
        result = run(["bash", "-c", 'source local/lib.sh; start_service "$1" localhost "$2" sleep 300',
                      "start_service", name, str(port)])
        assert result.returncode != 0
        assert name in result.stderr and str(port) in result.stderr, result.stderr
        assert not pid_file.exists()
        assert_still_listening(holder, port)
    finally:
        if pid_file.exists():  # only if the test fails: stop what start_service started
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
            pid_file.unlink()


def test_starting_a_running_service_changes_nothing():
    services = running_services()
    assert "postgresql" in services, "PostgreSQL is not running: run `make up` first"
    result = run(["bash", "local/services.sh", "start", "postgresql"])
    assert result.returncode == 0, result.stderr
    assert f"postgresql: already running (pid {services['postgresql']}" in result.stdout
    assert running_services() == services


@pytest.fixture
def project_copy() -> Iterator[Path]:
    """A copy of the project's scripts with its own empty state folder, sharing .venv and jars.

    `make up` there runs the real scripts without touching the running platform's state.
    """
    venv_stamp = (ROOT / ".venv" / ".installed").read_text().strip()
    jars_stamp = (ROOT / ".state" / "jars" / ".installed").read_text().strip()
    if venv_stamp != hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16] or \
            jars_stamp != hashlib.sha256((ROOT / "jvm" / "pom.xml").read_bytes()).hexdigest()[:16]:
        pytest.fail(".venv or .state/jars is older than pyproject.toml or jvm/pom.xml: run `make up` first")
    copy = Path(tempfile.mkdtemp(prefix="platform-copy-"))
    for name in ("Makefile", ".env", "pyproject.toml"):
        shutil.copy2(ROOT / name, copy / name)
    # runner/ too: local/lib.sh reads .env through runner/config.py.
    for name in ("local", "docker", "jvm", "runner"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / ".venv").symlink_to(ROOT / ".venv")
    (copy / ".state").mkdir()
    (copy / ".state" / "jars").symlink_to(ROOT / ".state" / "jars")
    # Markers of existing data folders: the copy goes straight to starting each service,
    # without creating a PostgreSQL cluster, a MariaDB data folder or Kafka storage first.
    for marker in ("postgres/PG_VERSION", "mysql/data/mysql/", "kafka/data/meta.properties"):
        path = copy / ".state" / marker
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir() if marker.endswith("/") else path.write_text("")
    yield copy
    run(["bash", "local/services.sh", "stop"], cwd=copy)  # only what the copy's PID files name
    shutil.rmtree(copy)


def test_a_checkout_the_postgres_user_cannot_reach_replaces_a_cluster_left_at_its_path(project_copy):
    """CI clones to one path again and again. Where the postgres user cannot enter the checkout,
    the cluster lives in /var/lib/postgresql/platform-<hash of the path>: a new checkout there
    replaces what an earlier one left, starts, and initializes its databases (psql reading the
    init SQL it cannot open itself)."""
    shutil.rmtree(project_copy / ".state" / "postgres")  # the fixture's "cluster exists" marker
    assert run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
                "test", "-x", str(project_copy)]).returncode != 0, "the postgres user can enter the copy"
    elsewhere = Path("/var/lib/postgresql") / (
        "platform-" + hashlib.sha256(f"{project_copy}\n".encode()).hexdigest()[:12])
    elsewhere.mkdir()
    (elsewhere / "PG_VERSION").write_text("15\n")  # what a killed earlier run leaves behind
    port = str(free_port())
    try:
        started = run(["bash", "local/services.sh", "start", "postgresql"], cwd=project_copy,
                      POSTGRESQL_APP_PORT=port)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"removing {elsewhere}, left by an earlier checkout" in started.stdout
        assert (project_copy / ".state" / "postgres").resolve() == elsewhere
        initialized = run(["bash", "local/initdb.sh", "postgresql"], cwd=project_copy, POSTGRESQL_APP_PORT=port)
        assert initialized.returncode == 0, initialized.stdout + initialized.stderr
        assert "ready for" in initialized.stdout
    finally:
        run(["bash", "local/services.sh", "stop", "postgresql"], cwd=project_copy)
        shutil.rmtree(elsewhere, ignore_errors=True)


def test_make_up_fails_on_a_taken_port_and_stops_nothing(port_holder, project_copy):
    holder, port = port_holder
    services = running_services()
    result = run(["make", "up"], cwd=project_copy, POSTGRESQL_APP_PORT=str(port))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert re.search(rf"postgresql: port {port}\b.*in use", output), output
    assert_still_listening(holder, port)
    assert running_services() == services
    assert list((project_copy / ".state" / "pids").glob("*.pid")) == []


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Every port each service listens on at a fixed number; {held} is taken by another process and
# the service's other ports point at free ones, so only the held port can stop it.
SERVICE_PORTS = [
    ("postgresql", {"POSTGRESQL_APP_PORT": "{held}"}),
    ("mysql", {"MYSQL_APP_PORT": "{held}"}),
    ("kafka", {"KAFKA_BOOTSTRAP_SERVERS": "localhost:{held}", "KAFKA_CONTROLLER_PORT": "{free}"}),
    ("kafka", {"KAFKA_BOOTSTRAP_SERVERS": "localhost:{free}", "KAFKA_CONTROLLER_PORT": "{held}"}),
    ("spark-master", {"SPARK_MASTER_PORT": "{held}", "SPARK_MASTER_WEBUI_PORT": "{free}"}),
    ("spark-master", {"SPARK_MASTER_PORT": "{free}", "SPARK_MASTER_WEBUI_PORT": "{held}"}),
    ("spark-worker", {"SPARK_WORKER_WEBUI_PORT": "{held}", "SPARK_MASTER_PORT": "{free}"}),
]


@pytest.mark.parametrize(("service", "ports"), SERVICE_PORTS, ids=[
    f"{service}-{next(key for key, value in ports.items() if '{held}' in value)}" for service, ports in SERVICE_PORTS])
def test_each_service_refuses_a_taken_port_naming_it(port_holder, project_copy, service, ports):
    holder, port = port_holder
    services = running_services()
    overrides = {key: value.format(held=port, free=free_port()) for key, value in ports.items()}
    result = run(["bash", "local/services.sh", "start", service], cwd=project_copy, **overrides)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert any(f"{service}:" in line and re.search(rf"\b{port}\b", line) for line in output.splitlines()), output
    assert_still_listening(holder, port)
    assert running_services() == services
    assert list((project_copy / ".state" / "pids").glob("*.pid")) == []
