"""Publishing to PostgreSQL: everything in one transaction.

DDL is transactional in PostgreSQL, so a publish is one transaction: overwritten tables are
swapped by rename, appends and merges inserted from staging, and the consumed Kafka offsets
stored. Readers see all of it or none of it.
"""

from __future__ import annotations

from runner.targets.base import OLD_SUFFIX, Staged, Statement, Target


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

    def _on_conflict(self, keys: list[str], updates: list[str]) -> str:
        conflict = ", ".join(self.q(k) for k in keys)
        if not updates:
            return f"ON CONFLICT ({conflict}) DO NOTHING"
        return f"ON CONFLICT ({conflict}) DO UPDATE SET " + ", ".join(f"{self.q(c)} = excluded.{self.q(c)}" for c in updates)

    def _create_like_staging(self, item: Staged) -> str:
        return (f"CREATE TABLE IF NOT EXISTS {self.q(item.target)} "
                f"(LIKE {self.q(self.staging_name(item.target))} INCLUDING ALL)")

    def _publish(self, swaps: list[Staged], creates: list[Statement], dml: list[Statement],
                 drops: list[Statement]) -> None:
        self._transaction(creates + dml + [s for item in swaps for s in self._swap(item)] + drops)

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
