"""Stage results in the target database, then publish them all at once.

Every written result first lands in a staging table `<target>__staging` (Spark's JDBC writer,
batched). Nothing readers see changes until `publish`, after every file and check passed:
- PostgreSQL: one transaction: overwrites swap tables by rename, appends and merges insert
  from staging, and consumed Kafka offsets are stored; readers see all of it or none.
- MySQL: appends, merges and offsets in one transaction, then one `RENAME TABLE` statement
  swaps every overwritten table at once (atomic in MySQL and MariaDB).
A failed or killed run leaves the published tables as they were; its staging tables are
dropped by the next run.

Example:
    >>> target = Target(config.connection("mysql"), pipeline="marts")
    >>> target.staging_name("mart_user_activity")
    'mart_user_activity__staging'
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from pyspark.sql import functions as F
from pyspark.sql import types as T

from runner import config
from runner.targets import ddl

log = logging.getLogger("runner")

OFFSETS_TABLE = "runner_kafka_offsets"


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
    """The database a pipeline publishes to."""

    connection: config.Connection
    pipeline: str
    staged: dict[str, Staged] = field(default_factory=dict)
    _lock: object = None

    @property
    def dialect(self) -> str:
        return self.connection.kind

    def q(self, name: str) -> str:
        return ddl.quote(self.dialect, name)

    @staticmethod
    def staging_name(target: str) -> str:
        return f"{target}__staging"

    def _execute(self, statements: list[str], params: list[tuple] | None = None) -> None:
        with self.connection.connect() as conn:
            with conn.cursor() as cursor:
                for i, statement in enumerate(statements):
                    cursor.execute(statement, (params or [None] * len(statements))[i])
            conn.commit()

    def _query(self, statement: str, args: tuple = ()) -> list[tuple]:
        conn = self.connection.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement, args or None)
                return list(cursor.fetchall())
        finally:
            conn.close()

    # --- one run at a time -------------------------------------------------------------------
    @property
    def lock_name(self) -> str:
        """One lock per pipeline and target database (and schema): runs into other databases on
        the same server do not wait for each other. MySQL takes names of 64 characters at most."""
        name = f"runner:{self.pipeline}@{self.place}"
        return name if len(name) <= 64 else "runner:" + hashlib.sha1(name.encode()).hexdigest()

    @property
    def place(self) -> str:
        conn = self.connection
        return f"{conn.database}.{conn.schema}" if self.dialect == "postgresql" else conn.database

    def lock(self) -> None:
        """Hold a database lock for the run so two runs of one pipeline never interleave."""
        conn = self.connection.connect()
        conn.autocommit = True if self.dialect == "postgresql" else conn.autocommit
        with conn.cursor() as cursor:
            if self.dialect == "postgresql":
                cursor.execute("select pg_try_advisory_lock(hashtext(%s))", (self.lock_name,))
            else:
                cursor.execute("select get_lock(%s, 0)", (self.lock_name,))
            acquired = cursor.fetchone()[0]
        if not acquired:
            conn.close()
            raise RuntimeError(f"another run of pipeline {self.pipeline!r} holds its lock on "
                               f"{self.connection.address} ({self.place}); wait for it to finish")
        self._lock = conn

    def unlock(self) -> None:
        if self._lock is None:
            return
        # Release explicitly: MariaDB frees a GET_LOCK only once it has processed the disconnect.
        release = ("select pg_advisory_unlock(hashtext(%s))" if self.dialect == "postgresql"
                   else "select release_lock(%s)")
        try:
            with self._lock.cursor() as cursor:
                cursor.execute(release, (self.lock_name,))
        finally:
            self._lock.close()
            self._lock = None

    # --- staging -----------------------------------------------------------------------------
    def table_exists(self, name: str) -> bool:
        if self.dialect == "postgresql":
            sql = "select 1 from information_schema.tables where table_schema = %s and table_name = %s"
            args = (self.connection.schema, name)
        else:
            sql = "select 1 from information_schema.tables where table_schema = %s and table_name = %s"
            args = (self.connection.database, name)
        return bool(self._query(sql, args))

    def prepare_staging(self, target: str, mode: str, keys: tuple[str, ...], schema,
                        sizes: dict[str, int] | None = None) -> str:
        """Create an empty staging table for `target` with deliberate types; returns its name."""
        staging = self.staging_name(target)
        self._execute([f"DROP TABLE IF EXISTS {self.q(staging)}",
                       ddl.create_table(self.dialect, staging, schema, keys, sizes)])
        self.staged[target] = Staged(target, mode, keys, list(schema.names))
        return staging

    def write_staging(self, target: str, dataframe) -> int:
        """Load `dataframe` into the staging table of `target` with Spark's batched JDBC writer."""
        staging = self.staging_name(target)
        if self.dialect == "mysql":
            # Connector/J takes MariaDB (version 5.5.5-10.x) for a server without fractional
            # seconds and drops them; as text in the session's UTC they arrive whole.
            dataframe = dataframe.select([
                F.date_format(F.col(f"`{f.name}`"), "yyyy-MM-dd HH:mm:ss.SSSSSS").alias(f.name)
                if isinstance(f.dataType, (T.TimestampType, T.TimestampNTZType)) else F.col(f"`{f.name}`")
                for f in dataframe.schema.fields])
        (dataframe.write
         .option("batchsize", 10000)
         .option("isolationLevel", "READ_COMMITTED")
         .jdbc(self.connection.jdbc_url, self.q(staging) if self.dialect == "postgresql" else staging,
               mode="append", properties=self.connection.jdbc_properties))
        rows = self._query(f"SELECT COUNT(*) FROM {self.q(staging)}")[0][0]
        self.staged[target].rows = rows
        return rows

    def drop_staging(self) -> None:
        """Best effort: remove this run's staging tables (after a failure)."""
        if not self.staged:
            return
        try:
            self._execute([f"DROP TABLE IF EXISTS {self.q(self.staging_name(t))}" for t in self.staged])
        except Exception as error:  # the next run drops them anyway
            log.warning("could not drop staging tables: %s", error)

    # --- publishing --------------------------------------------------------------------------
    def _insert_from_staging(self, item: Staged) -> str:
        cols = ", ".join(self.q(c) for c in item.columns)
        insert = (f"INSERT INTO {self.q(item.target)} ({cols}) "
                  f"SELECT {cols} FROM {self.q(self.staging_name(item.target))}")
        if item.mode != "merge":
            return insert
        updates = [c for c in item.columns if c not in item.keys]
        if self.dialect == "mysql":
            assignments = ", ".join(f"{self.q(c)} = VALUES({self.q(c)})" for c in updates or item.keys)
            return f"{insert} ON DUPLICATE KEY UPDATE {assignments}"
        conflict = ", ".join(self.q(k) for k in item.keys)
        if not updates:
            return f"{insert} ON CONFLICT ({conflict}) DO NOTHING"
        assignments = ", ".join(f"{self.q(c)} = excluded.{self.q(c)}" for c in updates)
        return f"{insert} ON CONFLICT ({conflict}) DO UPDATE SET {assignments}"

    def _create_like_staging(self, item: Staged) -> str:
        staging = self.q(self.staging_name(item.target))
        if self.dialect == "mysql":
            return f"CREATE TABLE IF NOT EXISTS {self.q(item.target)} LIKE {staging}"
        return f"CREATE TABLE IF NOT EXISTS {self.q(item.target)} (LIKE {staging} INCLUDING ALL)"

    def _offset_statements(self, offsets: list[tuple[str, int, int]]) -> list[tuple[str, tuple]]:
        table = self.q(OFFSETS_TABLE)
        if self.dialect == "postgresql":
            upsert = (f"INSERT INTO {table} (pipeline, topic, kafka_partition, next_offset) VALUES (%s, %s, %s, %s) "
                      "ON CONFLICT (pipeline, topic, kafka_partition) DO UPDATE SET next_offset = excluded.next_offset, "
                      "updated_at = now()")
        else:
            upsert = (f"INSERT INTO {table} (pipeline, topic, kafka_partition, next_offset) VALUES (%s, %s, %s, %s) "
                      "ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset), updated_at = now()")
        return [(upsert, (self.pipeline, topic, partition, offset)) for topic, partition, offset in offsets]

    def ensure_offsets_table(self) -> None:
        self._execute([
            f"CREATE TABLE IF NOT EXISTS {self.q(OFFSETS_TABLE)} ("
            "pipeline VARCHAR(100) NOT NULL, topic VARCHAR(249) NOT NULL, kafka_partition INT NOT NULL, "
            "next_offset BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, "
            "PRIMARY KEY (pipeline, topic, kafka_partition))"])

    def stored_offsets(self, topic: str) -> dict[int, int]:
        """The next offset to read per partition of `topic`, as last published with the rows."""
        self.ensure_offsets_table()
        rows = self._query(f"SELECT kafka_partition, next_offset FROM {self.q(OFFSETS_TABLE)} "
                           "WHERE pipeline = %s AND topic = %s", (self.pipeline, topic))
        return {int(p): int(o) for p, o in rows}

    def publish(self, offsets: list[tuple[str, int, int]] | None = None) -> None:
        """Make every staged result visible at once (see the module docstring)."""
        swaps = [item for item in self.staged.values() if item.mode == "overwrite"]
        inserts = [item for item in self.staged.values() if item.mode != "overwrite"]
        creates = [(self._create_like_staging(item), None) for item in inserts]
        dml = [(self._insert_from_staging(item), None) for item in inserts]
        dml += self._offset_statements(offsets or [])
        drops = [(f"DROP TABLE {self.q(self.staging_name(item.target))}", None) for item in inserts]
        if self.dialect == "postgresql":
            # DDL is transactional here: everything commits together or not at all.
            self._transaction(creates + dml + self._postgres_swaps(swaps) + drops)
            return
        # MySQL commits implicitly on DDL: create missing targets first, keep the transaction to
        # the inserts and offsets, then swap the overwritten tables in one RENAME statement.
        self._transaction(creates)
        self._transaction(dml)
        if swaps:
            self._mysql_swap(swaps)
        self._transaction(drops)

    def _transaction(self, statements: list[tuple[str, tuple | None]]) -> None:
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

    def _postgres_swaps(self, swaps: list[Staged]) -> list[tuple[str, None]]:
        statements = []
        for item in swaps:
            old, staging, target = (self.q(f"{item.target}__old"), self.q(self.staging_name(item.target)),
                                    self.q(item.target))
            statements += [
                (f"DROP TABLE IF EXISTS {old}", None),
                (f"ALTER TABLE IF EXISTS {target} RENAME TO {self.q(item.target + '__old')}", None),
                (f"ALTER TABLE {staging} RENAME TO {self.q(item.target)}", None),
                (f"DROP TABLE IF EXISTS {old}", None),
                # Index names are unique per schema: give the key its usual name for the next staging.
                (f"ALTER INDEX IF EXISTS {self.q(self.staging_name(item.target) + '_pkey')} "
                 f"RENAME TO {self.q(item.target + '_pkey')}", None),
            ]
        return statements

    def _mysql_swap(self, swaps: list[Staged]) -> None:
        olds = [self.q(f"{item.target}__old") for item in swaps]
        pairs = []
        for item in swaps:
            if self.table_exists(item.target):
                pairs.append(f"{self.q(item.target)} TO {self.q(item.target + '__old')}")
            pairs.append(f"{self.q(self.staging_name(item.target))} TO {self.q(item.target)}")
        self._execute([f"DROP TABLE IF EXISTS {', '.join(olds)}",
                       f"RENAME TABLE {', '.join(pairs)}",
                       f"DROP TABLE IF EXISTS {', '.join(olds)}"])
