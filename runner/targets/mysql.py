"""Publishing to MySQL (and MariaDB): every write becomes visible through one RENAME TABLE.

MySQL commits implicitly on DDL, so no transaction can hold a publish that mixes overwrites
(a swap) with appends and merges (inserts). Instead every write lands beside its table first:
an overwrite in `<t>__staging`, an append or merge in `<t>__next` (a copy of `<t>` plus the
staged rows), the consumed Kafka offsets in a copy of the offsets table. Then one
`RENAME TABLE`, atomic in MySQL and MariaDB, swaps all of them in at once; if it fails, no
published table has changed. The price is a copy of each appended or merged table per run.

The RENAME waits for the metadata lock of every table it renames, and while it waits MySQL
queues every new reader of those tables behind it; so it waits `lock_wait` seconds at most
and is retried with backoff (see Target._until_locked).
"""

from __future__ import annotations

import hashlib

from pyspark.sql import functions as F
from pyspark.sql import types as T

from runner.errors import Busy
from runner.targets.base import NEXT_SUFFIX, OFFSETS_TABLE, OLD_SUFFIX, Staged, Target, log

# The server's error for a statement that gave up waiting for a lock (lock_wait_timeout).
_LOCK_WAIT_TIMEOUT = 1205


class MySQLTarget(Target):
    dialect = "mysql"

    @property
    def place(self) -> str:
        return self.connection.database

    def _try_lock_sql(self) -> str:
        return "select get_lock(%s, 0)"

    def _unlock_sql(self) -> str:
        return "select release_lock(%s)"

    def _holds_lock_sql(self) -> str:
        return "select coalesce(is_used_lock(%s) = connection_id(), 0)"

    def _lock_timed_out(self, error: Exception) -> bool:
        return bool(getattr(error, "args", None)) and error.args[0] == _LOCK_WAIT_TIMEOUT

    def _blockers(self, conn, tables: list[str]) -> list[str]:
        """Sessions holding a metadata lock on `tables` (MariaDB's metadata_lock_info plugin, if
        installed), else every other session with an open transaction (innodb_trx, with the
        PROCESS privilege), else every other idle session the server shows this user."""
        with conn.cursor() as cursor:
            holders = None
            try:
                cursor.execute(
                    "select distinct thread_id from information_schema.metadata_lock_info "
                    f"where table_schema = %s and table_name in ({', '.join(['%s'] * len(tables))}) "
                    "and thread_id <> connection_id()", (self.place, *tables))
                holders = {row[0] for row in cursor.fetchall()}
            except Exception:  # the plugin is not installed
                pass
            try:
                cursor.execute("select trx_mysql_thread_id, timestampdiff(second, trx_started, now()) "
                               "from information_schema.innodb_trx")
                in_transaction = dict(cursor.fetchall())
            except Exception:  # needs the PROCESS privilege
                in_transaction = None
            cursor.execute("select id, user, host, command, time from information_schema.processlist "
                           "where id <> connection_id() and command not in ('Daemon', 'Binlog Dump')")
            sessions = sorted(cursor.fetchall(), key=lambda s: -(s[4] or 0))  # the oldest first: likeliest
        found = []
        for session, user, host, command, seconds in sessions:
            if holders is not None and session not in holders:
                continue
            if holders is None and in_transaction is not None and session not in in_transaction:
                continue
            if holders is None and in_transaction is None and command != "Sleep":
                continue
            if in_transaction is not None and session in in_transaction:
                how_long = f"{in_transaction[session]} s in its transaction"
            else:
                how_long = f"{command.lower()} for {seconds} s"
            found.append(f"session {session} ({user}@{host}, {how_long})")
        if found and holders is None and in_transaction is None:
            found.append("(the server shows this user no transactions: install metadata_lock_info "
                         "or grant PROCESS to name the blocker exactly)")
        return found

    def _on_conflict(self, keys: list[str], updates: list[str]) -> str:
        # MySQL names no keys: any unique key conflicts. With nothing to update, a key
        # assigned to itself leaves the row alone.
        return "ON DUPLICATE KEY UPDATE " + ", ".join(f"{self.q(c)} = VALUES({self.q(c)})" for c in updates or keys)

    _needs_a_value = "extra NOT REGEXP 'auto_increment|generated'"

    def _column_types(self, table: str) -> dict[str, str]:
        return dict(self._query("SELECT column_name, column_type FROM information_schema.columns "
                                "WHERE table_schema = %s AND table_name = %s", (self.connection.schema, table)))

    def _create_like_staging(self, item: Staged) -> str:
        return f"CREATE TABLE IF NOT EXISTS {self.q(item.target)} LIKE {self.q(self.staging_name(item.target))}"

    def _for_jdbc(self, dataframe):
        # Connector/J takes MariaDB (version 5.5.5-10.x) for a server without fractional
        # seconds and drops them; as text in the session's UTC they arrive whole.
        def column(name: str):
            return F.col("`" + name.replace("`", "``") + "`")  # Spark's quoting: a backtick doubled

        return dataframe.select([
            F.date_format(column(f.name), "yyyy-MM-dd HH:mm:ss.SSSSSS").alias(f.name)
            if isinstance(f.dataType, (T.TimestampType, T.TimestampNTZType)) else column(f.name)
            for f in dataframe.schema.fields])

    def _load_connection(self):
        db = self.connection.connect(local_infile=True)
        with db.cursor() as cursor:
            cursor.execute("SET time_zone = '+00:00'")  # TIMESTAMP columns take the text as UTC
        return db

    def _load_file(self, db, table: str, columns: list[str], path) -> int:
        with db.cursor() as cursor:
            rows = cursor.execute(
                f"LOAD DATA LOCAL INFILE %s INTO TABLE {self.q(table)} CHARACTER SET utf8mb4 "
                "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
                f"({', '.join(self.q(c) for c in columns)})", (str(path),))
            # LOCAL turns what would be errors (a value cut, a duplicate key) into warnings.
            cursor.execute("SHOW WARNINGS LIMIT 3")
            warnings = cursor.fetchall()
        if warnings:
            shown = "; ".join(f"{level} {code}: {message}" for level, code, message in warnings)
            raise RuntimeError(f"loading {path.name} into {table} gave warnings, the rows would not be "
                               f"exactly the result's: {shown}")
        return rows

    def _publish(self, conn, swaps: list[Staged], inserts: list[Staged],
                 offsets: list[tuple[str, int, int]]) -> None:
        # target -> the table that replaces it: the staged result, or the copy with the rows added
        incoming = {item.target: self.staging_name(item.target) for item in swaps}
        guard = None
        with conn.cursor() as cursor:
            try:
                for item in inserts:
                    incoming[item.target] = self._next(
                        cursor, item.target, [(self._insert_from_staging(item, item.target + NEXT_SUFFIX), None)],
                        like=self.staging_name(item.target))
                if offsets:
                    # Other pipelines store offsets in the same table: one copy-and-rename at a time.
                    guard = self._guard_offsets(cursor)
                    incoming[OFFSETS_TABLE] = self._next(
                        cursor, OFFSETS_TABLE, self._offset_statements(offsets, OFFSETS_TABLE + NEXT_SUFFIX))
                conn.commit()
                self._rename_in(conn, cursor, incoming)
            except BaseException:
                # A failed statement leaves the transaction open, and its metadata locks would
                # make the cleanup of the staging tables wait for ever.
                if self._alive(conn):
                    conn.rollback()
                raise
            finally:
                if guard and self._alive(conn):  # a dead session released it already
                    cursor.execute("select release_lock(%s)", (guard,))
        self._best_effort(conn, [f"DROP TABLE IF EXISTS {self.q(self.staging_name(item.target))}" for item in inserts])

    def _replacements(self) -> list[str]:
        # The RENAME consumes the staged overwrites and the copies of the appended tables.
        return [self.staging_name(t) if item.mode == "overwrite" else t + NEXT_SUFFIX
                for t, item in self.staged.items()]

    def _next(self, cursor, target: str, statements, like: str | None = None) -> str:
        """Build `<target>__next`: a copy of the published `target` (or an empty table like
        `like` when there is none yet), with `statements` applied; returns its name."""
        following = target + NEXT_SUFFIX
        cursor.execute(f"DROP TABLE IF EXISTS {self.q(following)}")
        if self.table_exists(target):
            cursor.execute(f"CREATE TABLE {self.q(following)} LIKE {self.q(target)}")
            cursor.execute(f"INSERT INTO {self.q(following)} SELECT * FROM {self.q(target)}")
        else:
            cursor.execute(f"CREATE TABLE {self.q(following)} LIKE {self.q(like)}")
        for statement, args in statements:
            cursor.execute(statement, args)
        return following

    def _guard_offsets(self, cursor) -> str:
        name = f"runner:offsets@{self.place}"
        name = name if len(name) <= 64 else "runner:" + hashlib.sha1(name.encode()).hexdigest()
        cursor.execute("select get_lock(%s, %s)", (name, self.publish_timeout))
        if not cursor.fetchone()[0]:
            raise Busy(f"another pipeline stored Kafka offsets in {self.place}.{OFFSETS_TABLE} for more "
                       f"than {self.publish_timeout:g} s (publish_timeout): nothing was published; run again")
        return name

    def _rename_in(self, conn, cursor, incoming: dict[str, str]) -> None:
        """One RENAME TABLE: each target to `<target>__old`, its replacement to the target."""
        olds = ", ".join(self.q(target + OLD_SUFFIX) for target in incoming)
        pairs = []
        for target, replacement in incoming.items():
            if self.table_exists(target):
                pairs.append(f"{self.q(target)} TO {self.q(target + OLD_SUFFIX)}")
            pairs.append(f"{self.q(replacement)} TO {self.q(target)}")
        cursor.execute(f"SET SESSION lock_wait_timeout = {int(self.lock_wait)}")
        cursor.execute(f"DROP TABLE IF EXISTS {olds}")

        def rename() -> None:
            self._in_doubt = True  # from here until the server answers, the outcome is unknown
            cursor.execute(f"RENAME TABLE {', '.join(pairs)}")
            self._in_doubt = False

        def answered() -> None:
            self._in_doubt = False

        self._until_locked(conn, list(incoming), rename, undo=answered)
        # Published: a failure from here on must not fail the run (the next run drops them too).
        self._best_effort(conn, [f"DROP TABLE IF EXISTS {olds}"])

    def _best_effort(self, conn, statements: list[str]) -> None:
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        except Exception as error:
            log.warning("after publishing on %s (%s): could not clean up (%s); the next run does",
                        self.connection.address, self.place, error)
