"""Publishing to PostgreSQL: everything in one transaction.

DDL is transactional in PostgreSQL, so a publish is one transaction: overwritten tables are
swapped by rename, appends and merges inserted from staging, and the consumed Kafka offsets
stored. Readers see all of it or none of it.

The renames need ACCESS EXCLUSIVE locks, and while one waits every new reader of the table
queues behind it; so they come last, each attempt waits `lock_wait` seconds at most
(`SET LOCAL lock_timeout`), and a timed-out attempt rolls back to a savepoint and is retried
with backoff (see Target._until_locked), keeping the inserts done before it.
"""

from __future__ import annotations

from runner.targets.base import OLD_SUFFIX, Staged, Statement, Target
from runner.targets.names import quote_qualified

_LOCK_NOT_AVAILABLE = "55P03"  # the SQLSTATE of a statement that reached lock_timeout


class PostgreSQLTarget(Target):
    dialect = "postgresql"

    @property
    def place(self) -> str:
        return f"{self.connection.database}.{self.connection.schema}"

    def _lock_connection(self):
        conn = self.connection.connect()
        conn.autocommit = True  # the advisory lock is the session's, outside any transaction
        return conn

    def _try_lock_sql(self) -> str:
        return "select pg_try_advisory_lock(hashtext(%s))"

    def _unlock_sql(self) -> str:
        return "select pg_advisory_unlock(hashtext(%s))"

    def _holds_lock_sql(self) -> str:
        # pg_locks shows a bigint advisory key as its high (classid) and low (objid) halves.
        return ("select exists (select 1 from pg_locks where locktype = 'advisory' and granted "
                "and pid = pg_backend_pid() and objsubid = 1 "
                "and ((classid::bigint << 32) | objid::bigint) = hashtext(%s)::bigint)")

    def _lock_timed_out(self, error: Exception) -> bool:
        return getattr(error, "pgcode", None) == _LOCK_NOT_AVAILABLE

    def _blockers(self, conn, tables: list[str]) -> list[str]:
        """Sessions holding a lock on `tables`, from pg_locks and pg_stat_activity."""
        names = [f"{self.q(self.connection.schema)}.{self.q(t)}" for t in tables]
        with conn.cursor() as cursor:
            cursor.execute(
                "select distinct a.pid, a.usename, coalesce(host(a.client_addr), 'local'), a.client_port, "
                "extract(epoch from clock_timestamp() - a.xact_start)::int, a.state, c.relname "
                "from pg_locks l join pg_stat_activity a on a.pid = l.pid join pg_class c on c.oid = l.relation "
                "where l.granted and l.pid <> pg_backend_pid() and a.xact_start is not null "
                "and l.relation in (select to_regclass(n) from unnest(%s::text[]) as n) order by 5 desc", (names,))
            found = cursor.fetchall()
        return [f"session {pid} ({user}@{host}:{port}, {seconds} s in its transaction, {state}, on {table})"
                for pid, user, host, port, seconds, state, table in found]

    def _on_conflict(self, keys: list[str], updates: list[str]) -> str:
        conflict = ", ".join(self.q(k) for k in keys)
        if not updates:
            return f"ON CONFLICT ({conflict}) DO NOTHING"
        assignments = ", ".join(f"{self.q(c)} = excluded.{self.q(c)}" for c in updates)
        return f"ON CONFLICT ({conflict}) DO UPDATE SET {assignments}"

    _needs_a_value = "is_identity = 'NO' AND is_generated = 'NEVER'"

    def _column_types(self, table: str) -> dict[str, str]:
        return dict(self._query("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                                "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
                                (quote_qualified(self.dialect, self.connection.schema, table),)))

    def _create_like_staging(self, item: Staged) -> str:
        return (f"CREATE TABLE IF NOT EXISTS {self.q(item.target)} "
                f"(LIKE {self.q(self.staging_name(item.target))} INCLUDING ALL)")

    def _load_connection(self):
        db = self.connection.connect()
        with db.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
        return db

    def _load_file(self, db, table: str, columns: list[str], path) -> int:
        with db.cursor() as cursor, open(path, "rb") as rows:
            cursor.copy_expert(f"COPY {self.q(table)} ({', '.join(self.q(c) for c in columns)}) FROM STDIN", rows)
            return cursor.rowcount

    def _publish(self, conn, swaps: list[Staged], inserts: list[Staged],
                 offsets: list[tuple[str, int, int]]) -> None:
        # Inserts take only ROW EXCLUSIVE locks, which readers never wait for: they go first.
        writes = [(self._create_like_staging(item), None) for item in inserts]
        writes += [(self._insert_from_staging(item), None) for item in inserts]
        writes += self._offset_statements(offsets)
        writes += [(f"DROP TABLE {self.q(self.staging_name(item.target))}", None) for item in inserts]
        renames = [s for item in swaps for s in self._swap(item)]
        conn.autocommit = False  # the lock's session is autocommit between publishes
        try:
            with conn.cursor() as cursor:
                for statement, args in writes:
                    cursor.execute(statement, args)
                cursor.execute("SAVEPOINT before_swap")

                def swap() -> None:
                    cursor.execute(f"SET LOCAL lock_timeout = '{int(self.lock_wait * 1000)}ms'")
                    for statement, args in renames:
                        cursor.execute(statement, args)

                if renames:
                    self._until_locked(conn, [item.target for item in swaps], swap,
                                       undo=lambda: cursor.execute("ROLLBACK TO SAVEPOINT before_swap"))
            self._in_doubt = True  # from here until the server answers, the outcome is unknown
            conn.commit()
            self._in_doubt = False
        except BaseException:
            if self._alive(conn):
                conn.rollback()
            raise
        finally:
            if self._alive(conn):
                conn.autocommit = True

    def _swap(self, item: Staged) -> list[Statement]:
        old, staging, target = (self.q(item.target + OLD_SUFFIX), self.q(self.staging_name(item.target)),
                                self.q(item.target))
        return [
            (f"DROP TABLE IF EXISTS {old}", None),
            (f"ALTER TABLE IF EXISTS {target} RENAME TO {old}", None),
            (f"ALTER TABLE {staging} RENAME TO {target}", None),
            (f"DROP TABLE IF EXISTS {old}", None),
            # Index names are unique per schema: give the key its usual name for the next staging.
            (f"ALTER INDEX IF EXISTS {self.q(self.staging_name(item.target) + '_pkey')} "
             f"RENAME TO {self.q(item.target + '_pkey')}", None),
        ]
