"""Stage results in the target database, then publish them all at once.

Every written result first lands in a staging table `<target>__staging` (Spark's JDBC writer,
batched). Nothing readers see changes until `publish`, after every file and check passed; how a
database makes that atomic lives in its own target (postgresql.py, mysql.py). A failed or killed
run leaves the published tables as they were; its staging tables are dropped by the next run.

`Target` holds what every database shares: the run lock's life cycle, staging, the stored Kafka
offsets, and the order of a publish. A subclass states its dialect: quoting, the lock calls,
the upsert forms and how the swap is made atomic.

Illustration (needs a database):

    target = target_for(config.connection("mysql"), pipeline="marts")
    target.lock()
    target.prepare_staging("mart_user_activity", "overwrite", ("user_id", "status"), frame.schema)
    target.write_staging("mart_user_activity", frame)
    target.publish()
    target.unlock()
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

from runner import config
from runner.errors import Busy, Retryable, RunnerError, one_line
from runner.targets import bulk, ddl
from runner.targets.names import OFFSETS_TABLE, OLD_SUFFIX, STAGING_SUFFIX  # noqa: F401 - the targets import them from here

log = logging.getLogger("runner")

Statement = tuple[str, tuple | None]

# Ranges of Kafka offsets lost before they were read (retention, a broker that lost its tail).
GAPS_TABLE = "runner_kafka_gaps"


class Offset(NamedTuple):
    """The next offset a consumer reads in one partition of one incarnation of a topic."""

    consumer: str
    topic: str
    partition: int
    topic_id: str
    next_offset: int
    leader_epoch: int | None  # the leader epoch it was read in: shows a log that lost its tail since


class Gap(NamedTuple):
    """Offsets a consumer never read because Kafka lost them: recorded, never silent."""

    consumer: str
    topic: str
    topic_id: str
    partition: int
    first_offset: int
    last_offset: int
    reason: str

# MySQL builds the next version of an appended or merged table beside it, then renames it in.
NEXT_SUFFIX = "__next"
# Readers queue behind a swap that waits for its lock (MySQL's metadata lock, PostgreSQL's
# ACCESS EXCLUSIVE): each attempt waits this long at most, so no reader waits longer.
SWAP_LOCK_WAIT = 2
PUBLISH_TIMEOUT = 120.0  # seconds of attempts before a blocked swap gives up (exit 3)
_FIRST_PAUSE, _LONGEST_PAUSE = 0.5, 8.0  # backoff between attempts: readers run freely then


@dataclass
class Staged:
    """A result loaded into its staging table, waiting to be published."""

    target: str
    mode: str
    keys: tuple[str, ...]
    columns: list[str]
    rows: int = 0


@dataclass
class Target:
    """The database a pipeline publishes to (see the subclasses for each kind)."""

    connection: config.Connection
    pipeline: str
    staged: dict[str, Staged] = field(default_factory=dict)
    _lock: object = None
    publish_timeout: float = PUBLISH_TIMEOUT
    lock_wait: int = SWAP_LOCK_WAIT
    _in_doubt: bool = False  # the final statement of a publish was sent and not yet answered

    dialect = ""  # the kind of database, as ddl names it

    # --- what each kind of database states ------------------------------------------------------
    @property
    def place(self) -> str:
        """Where the tables live on the server: a database (and schema)."""
        raise NotImplementedError

    def _lock_connection(self):
        """The connection the run lock lives on, for the whole run."""
        return self.connection.connect()

    def _try_lock_sql(self) -> str:
        """Takes the lock named by the one parameter if it is free; returns true if taken."""
        raise NotImplementedError

    def _unlock_sql(self) -> str:
        raise NotImplementedError

    def _holds_lock_sql(self) -> str:
        """True if this session holds the lock named by the one parameter."""
        raise NotImplementedError

    def _lock_timed_out(self, error: Exception) -> bool:
        """True for the error of a statement that gave up waiting for a lock."""
        raise NotImplementedError

    def _blockers(self, conn, tables: list[str]) -> list[str]:
        """The other sessions that hold locks on `tables`: id, user, host, seconds in transaction."""
        raise NotImplementedError

    def _on_conflict(self, keys: list[str], updates: list[str]) -> str:
        """The clause that turns an INSERT into an upsert: a row whose `keys` exist already
        updates its `updates` columns instead (or is left alone when there are none)."""
        raise NotImplementedError

    def _create_like_staging(self, item: Staged) -> str:
        raise NotImplementedError

    def _publish(self, conn, swaps: list[Staged], inserts: list[Staged],
                 offsets: list[tuple[str, int, int]]) -> None:
        """On `conn`, the lock's connection, make it all visible at once: overwrites swapped in,
        appends and merges inserted, offsets stored."""
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------------
    def q(self, name: str) -> str:
        return ddl.quote(self.dialect, name)

    @staticmethod
    def staging_name(target: str) -> str:
        return f"{target}{STAGING_SUFFIX}"

    def _transaction(self, statements: list[Statement]) -> None:
        """Run the statements on one connection and commit, or roll all of them back."""
        if not statements:
            return
        conn = self.connection.connect()
        try:
            with conn.cursor() as cursor:
                for statement, args in statements:
                    cursor.execute(statement, args)
            conn.commit()
        except Exception:
            conn.rollback()
            raise
        finally:
            conn.close()

    def _execute(self, *statements: str) -> None:
        self._transaction([(statement, None) for statement in statements])

    def _query(self, statement: str, args: tuple = ()) -> list[tuple]:
        conn = self.connection.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement, args or None)
                return list(cursor.fetchall())
        finally:
            conn.close()

    # --- one run at a time ----------------------------------------------------------------------
    @property
    def lock_name(self) -> str:
        """One lock per pipeline and target database (and schema): runs into other databases on
        the same server do not wait for each other. MySQL takes names of 64 characters at most."""
        name = f"runner:{self.pipeline}@{self.place}"
        return name if len(name) <= 64 else "runner:" + hashlib.sha1(name.encode()).hexdigest()

    def lock(self) -> None:
        """Hold a database lock for the run so two runs of one pipeline never interleave."""
        conn = self._lock_connection()
        with conn.cursor() as cursor:
            cursor.execute(self._try_lock_sql(), (self.lock_name,))
            acquired = cursor.fetchone()[0]
        if not acquired:
            conn.close()
            raise RuntimeError(f"another run of pipeline {self.pipeline!r} holds its lock on "
                               f"{self.connection.address} ({self.place}); wait for it to finish")
        self._lock = conn

    def verify_lock(self) -> None:
        """Stop (exit 3) unless the lock's connection is alive and still holds the lock: a
        connection killed, idle-timed-out or lost in a server restart took the lock with it, and
        another run may hold it now."""
        try:
            with self._lock.cursor() as cursor:
                cursor.execute(self._holds_lock_sql(), (self.lock_name,))
                held = bool(cursor.fetchone()[0])
            cause = "the server says this session no longer holds it"
        except Exception as error:  # a dead connection fails any statement
            held, cause = False, one_line(error)
        if not held:
            raise Retryable(f"the run lock of pipeline {self.pipeline!r} on {self.connection.address} "
                            f"({self.place}) was lost before publishing ({cause}; its connection was killed, "
                            "timed out or the server restarted): nothing was published; run again")

    def unlock(self) -> None:
        """Release the lock. A failure here never replaces the run's outcome: it is logged, and
        the server frees the lock when the session ends anyway."""
        if self._lock is None:
            return
        # Release explicitly: MariaDB frees a GET_LOCK only once it has processed the disconnect.
        try:
            with self._lock.cursor() as cursor:
                cursor.execute(self._unlock_sql(), (self.lock_name,))
        except Exception as error:
            log.warning("could not release the run lock of pipeline %r on %s (%s): %s; the server "
                        "frees it when the session ends", self.pipeline, self.connection.address,
                        self.place, one_line(error))
        finally:
            try:
                self._lock.close()
            except Exception:  # already closed by the failure above
                pass
            self._lock = None

    # --- staging --------------------------------------------------------------------------------
    def table_exists(self, name: str) -> bool:
        return bool(self._query("select 1 from information_schema.tables where table_schema = %s "
                                "and table_name = %s", (self.connection.schema, name)))

    def prepare_staging(self, target: str, mode: str, keys: tuple[str, ...], schema,
                        sizes: dict[str, int] | None = None) -> str:
        """Create an empty staging table for `target` with deliberate types; returns its name."""
        staging = self.staging_name(target)
        self._execute(f"DROP TABLE IF EXISTS {self.q(staging)}",
                      ddl.create_table(self.dialect, staging, schema, keys, sizes))
        self.staged[target] = Staged(target, mode, keys, list(schema.names))
        if mode != "overwrite" and self.table_exists(target):
            self._check_appendable(self.staged[target])
        return staging

    def _check_appendable(self, item: Staged) -> None:
        """An append or a merge goes into the table as it stands: a table made by an earlier
        version of the SQL, whose columns or key the result no longer matches, fails the run
        here, before anything is loaded, naming each difference and the statements that mend it."""
        place = (self.connection.schema, item.target)
        columns = self._query(
            f"SELECT column_name, is_nullable = 'NO' AND column_default IS NULL AND {self._needs_a_value} "
            "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "ORDER BY ordinal_position", place)
        key = [name for (name,) in self._query(
            "SELECT k.column_name FROM information_schema.table_constraints c "
            "JOIN information_schema.key_column_usage k ON k.constraint_schema = c.constraint_schema "
            "AND k.constraint_name = c.constraint_name AND k.table_schema = c.table_schema "
            "AND k.table_name = c.table_name WHERE c.constraint_type = 'PRIMARY KEY' "
            "AND c.table_schema = %s AND c.table_name = %s ORDER BY k.ordinal_position", place)]
        existing = {name for name, _ in columns}
        missing = [c for c in item.columns if c not in existing]
        required = [name for name, required in columns if required and name not in item.columns]
        problems, mends = [], []
        if missing:
            types = self._column_types(self.staging_name(item.target))
            problems.append(f"it lacks the result's column(s) {', '.join(missing)}")
            mends += [f"ALTER TABLE {self.q(item.target)} ADD COLUMN {self.q(c)} {types[c]}" for c in missing]
        if required:
            problems.append(f"its column(s) {', '.join(required)} are NOT NULL without a default, and the "
                            "result has no such column")
        if item.keys and sorted(key) != sorted(item.keys):
            problems.append(f"its primary key is ({', '.join(key) or 'none'}), the keys header's is "
                            f"({', '.join(item.keys)})")
        if problems:
            mend = f" ({'; '.join(mends)})" if mends else ""
            raise RunnerError(
                f"{self.connection.name} table {item.target} cannot take this {item.mode}: {'; '.join(problems)}. "
                f"It was made by an earlier version of the SQL: bring it up to date{mend}, or move it aside to "
                "have it made anew; nothing was loaded or published")

    def _column_types(self, table: str) -> dict[str, str]:
        """{column: its type as DDL writes it} of `table`."""
        raise NotImplementedError

    # An information_schema.columns condition, true of a column that an insert leaving it out
    # cannot fill (no identity, auto-increment or generated value).
    _needs_a_value = "TRUE"

    def _jdbc_table(self, name: str) -> str:
        """How Spark's JDBC writer names a table."""
        return self.q(name)

    def _for_jdbc(self, dataframe):
        """The frame as the JDBC writer should send it."""
        return dataframe

    def _load_connection(self):
        """A connection to bulk-load on, its session in UTC."""
        raise NotImplementedError

    def _load_file(self, db, table: str, columns: list[str], path) -> int:
        """Load one file of bulk.py's text format into `table` on `db`; returns the rows loaded."""
        raise NotImplementedError

    def write_staging(self, target: str, dataframe) -> int:
        """Load `dataframe` into the staging table of `target`: with the database's bulk loader
        where bulk.py can (the rows as text files, two loaded at a time), else with Spark's
        batched JDBC writer."""
        staging = self.staging_name(target)
        if bulk.enabled(dataframe.sparkSession, dataframe.schema):
            rows = self._bulk_load(staging, dataframe)
        else:
            (self._for_jdbc(dataframe).write
             .option("batchsize", 10000)
             .option("isolationLevel", "READ_COMMITTED")
             .jdbc(self.connection.jdbc_url, self._jdbc_table(staging), mode="append",
                   properties=self.connection.jdbc_properties))
            rows = self._query(f"SELECT COUNT(*) FROM {self.q(staging)}")[0][0]
        self.staged[target].rows = rows
        return rows

    def _bulk_load(self, staging: str, dataframe) -> int:
        started = time.monotonic()
        with bulk.Export(dataframe) as files:
            exported = time.monotonic()

            def load(path) -> int:
                db = self._load_connection()
                try:
                    rows = self._load_file(db, staging, dataframe.schema.names, path)
                    db.commit()
                    return rows
                finally:
                    db.close()

            with ThreadPoolExecutor(max(1, min(bulk.PARALLEL_LOADS, len(files)))) as pool:
                rows = sum(pool.map(load, files))
        loaded = time.monotonic()
        log.info("%s: %d rows read in %.1fs, loaded in %.1fs from %d file(s) (%.0f rows/s)", staging, rows,
                 exported - started, loaded - exported, len(files), rows / max(loaded - exported, 1e-3))
        return rows

    def drop_staging(self) -> None:
        """Best effort: remove this run's staging tables (after a failure)."""
        if not self.staged:
            return
        try:
            self._execute(*(f"DROP TABLE IF EXISTS {self.q(name)}" for t in self.staged
                            for name in (self.staging_name(t), t + NEXT_SUFFIX)))
        except Exception as error:  # the next run drops them anyway
            log.warning("could not drop staging tables: %s", error)

    # --- Kafka offsets, stored with the rows ----------------------------------------------------
    def ensure_offsets_table(self) -> None:
        """The offsets table and the gaps table, created or brought up to date (a table of an
        earlier version keyed its rows by `pipeline` and knew no topic ids nor leader epochs)."""
        self._execute(
            f"CREATE TABLE IF NOT EXISTS {self.q(OFFSETS_TABLE)} ("
            "consumer VARCHAR(100) NOT NULL, topic VARCHAR(249) NOT NULL, kafka_partition INT NOT NULL, "
            "topic_id VARCHAR(36), next_offset BIGINT NOT NULL, leader_epoch INT, "
            "updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, "
            "PRIMARY KEY (consumer, topic, kafka_partition))",
            f"CREATE TABLE IF NOT EXISTS {self.q(GAPS_TABLE)} ("
            "consumer VARCHAR(100) NOT NULL, topic VARCHAR(249) NOT NULL, topic_id VARCHAR(36) NOT NULL, "
            "kafka_partition INT NOT NULL, first_offset BIGINT NOT NULL, last_offset BIGINT NOT NULL, "
            "detected_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, reason VARCHAR(200) NOT NULL, "
            "PRIMARY KEY (consumer, topic_id, kafka_partition, first_offset))")
        columns = {c for (c,) in self._query("SELECT column_name FROM information_schema.columns "
                                              "WHERE table_schema = %s AND table_name = %s",
                                              (self.connection.schema, OFFSETS_TABLE))}
        if "pipeline" in columns:
            self._execute(f"ALTER TABLE {self.q(OFFSETS_TABLE)} RENAME COLUMN pipeline TO consumer")
        if "topic_id" not in columns:
            # Rows without an id are taken to belong to the topic as it is when next read.
            self._execute(f"ALTER TABLE {self.q(OFFSETS_TABLE)} ADD COLUMN topic_id VARCHAR(36)")
        if "leader_epoch" not in columns:  # a position without one is checked against the log's end only
            self._execute(f"ALTER TABLE {self.q(OFFSETS_TABLE)} ADD COLUMN leader_epoch INT")

    def stored_offsets(self, consumer: str, topic: str) -> dict[int, tuple[str | None, int, int | None]]:
        """(topic id, next offset to read, its leader epoch) per partition of `topic`, as last
        published with the rows."""
        self.ensure_offsets_table()
        rows = self._query(f"SELECT kafka_partition, topic_id, next_offset, leader_epoch FROM {self.q(OFFSETS_TABLE)} "
                           "WHERE consumer = %s AND topic = %s", (consumer, topic))
        return {int(p): (topic_id, int(o), None if e is None else int(e)) for p, topic_id, o, e in rows}

    # --- publishing -----------------------------------------------------------------------------
    def _insert_from_staging(self, item: Staged, into: str | None = None) -> str:
        """Insert (or merge) the staged rows into `into` (default: the target itself)."""
        cols = ", ".join(self.q(c) for c in item.columns)
        insert = (f"INSERT INTO {self.q(into or item.target)} ({cols}) "
                  f"SELECT {cols} FROM {self.q(self.staging_name(item.target))}")
        if item.mode != "merge":
            return insert
        return f"{insert} {self._on_conflict(list(item.keys), [c for c in item.columns if c not in item.keys])}"

    def _upsert_offset_sql(self, table: str = OFFSETS_TABLE) -> str:
        keys, values = ["consumer", "topic", "kafka_partition"], ["topic_id", "next_offset", "leader_epoch"]
        return (f"INSERT INTO {self.q(table)} ({', '.join(keys + values)}) VALUES (%s, %s, %s, %s, %s, %s) "
                f"{self._on_conflict(keys, values)}, updated_at = CURRENT_TIMESTAMP")

    def _insert_gap_sql(self) -> str:
        # A gap found again by a rerun after a failed publish is the same gap: stored once.
        return (f"INSERT INTO {self.q(GAPS_TABLE)} (consumer, topic, topic_id, kafka_partition, first_offset, "
                f"last_offset, reason) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                f"{self._on_conflict(['consumer', 'topic_id', 'kafka_partition', 'first_offset'], [])}")

    def _offset_statements(self, offsets: list[Offset | Gap], table: str = OFFSETS_TABLE) -> list[Statement]:
        """The statements that store the consumed offsets in `table`, and the lost ranges found
        on the way in the gaps table: in the same transaction as the rows."""
        return [(self._insert_gap_sql(), tuple(item)) if isinstance(item, Gap)
                else (self._upsert_offset_sql(table), tuple(item)) for item in offsets]

    def publish(self, offsets: list[Offset | Gap] | None = None) -> None:
        """Make every staged result visible at once (see the module docstring), on the lock's own
        connection: if that connection dies, the lock and the publish end together."""
        swaps = [item for item in self.staged.values() if item.mode == "overwrite"]
        inserts = [item for item in self.staged.values() if item.mode != "overwrite"]
        self.verify_lock()
        try:
            self._publish(self._lock, swaps, inserts, list(offsets or []))
        except RunnerError:
            raise
        except Exception as error:
            if self._alive(self._lock):
                raise
            # Killed, timed out or restarted: the server rolled back what was not committed.
            outcome = "nothing was published"
            if self._in_doubt:
                published = self._final_step_done()
                if published:  # the lock was held until the swap was done: the run succeeded
                    log.warning("the connection holding the run lock was lost (%s) after the publish "
                                "was done", one_line(error))
                    return
                if published is None:
                    outcome = ("the server may have finished the swap before the connection dropped: "
                               "check " + ", ".join(self.staged))
            raise Retryable(f"publishing to {self.connection.kind} at {self.connection.address} ({self.place}): "
                            f"the connection holding the run lock was lost ({one_line(error)}); {outcome}; "
                            "run again") from None
        finally:
            self._in_doubt = False

    def _replacements(self) -> list[str]:
        """The tables the final step of a publish consumes (renames or drops)."""
        return [self.staging_name(t) for t in self.staged]

    def _final_step_done(self) -> bool | None:
        """After the connection died during the final, atomic step (RENAME, COMMIT): whether it
        happened, told by the tables it consumes; None if the server cannot say now."""
        names = self._replacements()
        try:
            return not any(self.table_exists(name) for name in names) if names else None
        except Exception:  # the server is not back yet
            return None

    @staticmethod
    def _alive(conn) -> bool:
        """False once the driver has seen its connection die (psycopg2: closed; pymysql: not open)."""
        if hasattr(conn, "open"):  # pymysql
            return bool(conn.open)
        return not conn.closed

    def _until_locked(self, conn, tables: list[str], attempt: Callable[[], None],
                      undo: Callable[[], None] = lambda: None) -> None:
        """Run `attempt` (statements whose lock waits are short) until it gets its locks, pausing
        with backoff between attempts, for `publish_timeout` seconds at most; then give up with
        exit 3 naming the sessions that hold the locks. `undo` cleans up a timed-out attempt.

        This is gh-ost's cut-over: a swap that waits long makes every new reader of the table
        queue behind it, so each wait is short and readers run freely between attempts.
        """
        deadline = time.monotonic() + self.publish_timeout
        pause, attempts = _FIRST_PAUSE, 0
        while True:
            attempts += 1
            try:
                attempt()
                return
            except Exception as error:
                if not self._lock_timed_out(error):
                    raise
                undo()
            blockers = "; ".join(self._blockers(conn, tables)) or "a session that has ended since"
            left = deadline - time.monotonic()
            names = ", ".join(tables)
            if left <= 0:
                raise Busy(f"publishing {names} on {self.connection.address} ({self.place}): still blocked after "
                           f"{attempts} attempt(s) in {self.publish_timeout:g} s (publish_timeout) by {blockers}; "
                           "nothing was published; end that session's transaction, or run again later")
            pause = min(pause, left)
            log.warning("publishing %s waits for the lock(s) held by %s: attempt %d gave up after %d s; "
                        "retrying in %.1f s (%.0f s of %g s publish_timeout left)",
                        names, blockers, attempts, self.lock_wait, pause, left, self.publish_timeout)
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)


def target_for(connection: config.Connection, pipeline: str) -> Target:
    """The target of a connection's kind of database."""
    from runner.targets.mysql import MySQLTarget
    from runner.targets.postgresql import PostgreSQLTarget

    kinds = {"postgresql": PostgreSQLTarget, "mysql": MySQLTarget}
    if connection.kind not in kinds:
        raise config.ConfigError(f"connection {connection.name!r} ({connection.kind}) cannot be a target: "
                                 f"publish to {' or '.join(kinds)}")
    return kinds[connection.kind](connection, pipeline)
