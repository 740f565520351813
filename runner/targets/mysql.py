"""Publishing to MySQL (and MariaDB): one transaction, then one RENAME TABLE.

MySQL commits implicitly on DDL, so a publish creates missing append or merge targets first,
keeps one transaction to the inserts and the offsets, then swaps every overwritten table in a
single `RENAME TABLE` statement, which is atomic in MySQL and MariaDB.
"""

from __future__ import annotations

from pyspark.sql import functions as F
from pyspark.sql import types as T

from runner.targets.base import OLD_SUFFIX, Staged, Statement, Target


class MySQLTarget(Target):
    dialect = "mysql"

    @property
    def place(self) -> str:
        return self.connection.database

    def _try_lock_sql(self) -> str:
        return "select get_lock(%s, 0)"

    def _unlock_sql(self) -> str:
        return "select release_lock(%s)"

    def _on_conflict(self, keys: list[str], updates: list[str]) -> str:
        # MySQL names no keys: any unique key conflicts. With nothing to update, a key
        # assigned to itself leaves the row alone.
        return "ON DUPLICATE KEY UPDATE " + ", ".join(f"{self.q(c)} = VALUES({self.q(c)})" for c in updates or keys)

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

    def _publish(self, swaps: list[Staged], creates: list[Statement], dml: list[Statement],
                 drops: list[Statement]) -> None:
        self._transaction(creates)
        self._transaction(dml)
        if swaps:
            self._swap(swaps)
        self._transaction(drops)

    def _swap(self, swaps: list[Staged]) -> None:
        olds = ", ".join(self.q(item.target + OLD_SUFFIX) for item in swaps)
        pairs = []
        for item in swaps:
            if self.table_exists(item.target):
                pairs.append(f"{self.q(item.target)} TO {self.q(item.target + OLD_SUFFIX)}")
            pairs.append(f"{self.q(self.staging_name(item.target))} TO {self.q(item.target)}")
        self._execute(f"DROP TABLE IF EXISTS {olds}", f"RENAME TABLE {', '.join(pairs)}",
                      f"DROP TABLE IF EXISTS {olds}")
