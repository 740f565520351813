"""Deliberate column types of published tables (`runner.targets.ddl`): keys NOT NULL + PRIMARY KEY,
DECIMAL(p,s), sized VARCHAR (from `cast(x as varchar(n))` in the SQL or from the source's
JDBC metadata), timestamps as timestamps, never Spark's TEXT defaults.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import types as T

from runner.model.pipeline import load_sql_file
from runner.targets.ddl import DEFAULT_VARCHAR, column_type, create_table, string_size


def jdbc_string(name: str, declared: str) -> T.StructField:
    """A string column as Spark's JDBC reader returns a source VARCHAR/CHAR column."""
    return T.StructField(name, T.StringType(), True, {"__CHAR_VARCHAR_TYPE_STRING": declared,
                                                      "jdbcClientType": "varchar"})


ORDERS = T.StructType([
    T.StructField("order_id", T.IntegerType(), True),
    jdbc_string("status", "varchar(20)"),
    T.StructField("total_amount", T.DecimalType(10, 2), True),
    T.StructField("order_date", T.TimestampType(), True),
    T.StructField("note", T.StringType(), True),
])


def sql_file(tmp_path: Path, sql: str):
    path = tmp_path / "010_result.sql"
    path.write_text(sql)
    loaded = load_sql_file(path)
    assert loaded.problems == []
    return loaded


def test_mysql_table_keeps_keys_decimals_sizes_and_timestamps() -> None:
    assert create_table("mysql", "orders", ORDERS, keys=("order_id",)) == (
        "CREATE TABLE `orders` (`order_id` INT NOT NULL, `status` VARCHAR(20), "
        "`total_amount` DECIMAL(10,2), `order_date` DATETIME(6), `note` VARCHAR(255), "
        "PRIMARY KEY (`order_id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")


def test_postgresql_table_keeps_keys_decimals_sizes_and_timestamps() -> None:
    assert create_table("postgresql", "orders", ORDERS, keys=("order_id",)) == (
        'CREATE TABLE "orders" ("order_id" INTEGER NOT NULL, "status" VARCHAR(20), '
        '"total_amount" DECIMAL(10,2), "order_date" TIMESTAMP, "note" VARCHAR(255), '
        'PRIMARY KEY ("order_id"))')


def test_composite_key_columns_are_all_not_null() -> None:
    statement = create_table("mysql", "t", ORDERS, keys=("order_id", "status"))
    assert "`order_id` INT NOT NULL" in statement and "`status` VARCHAR(20) NOT NULL" in statement
    assert statement.endswith("PRIMARY KEY (`order_id`, `status`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")


def test_columns_spark_knows_are_never_null_are_not_null() -> None:
    schema = T.StructType([T.StructField("n", T.LongType(), nullable=False)])
    assert create_table("postgresql", "t", schema) == 'CREATE TABLE "t" ("n" BIGINT NOT NULL)'


def test_a_key_that_is_not_a_column_is_an_error_naming_it() -> None:
    with pytest.raises(KeyError, match="user_id"):
        create_table("mysql", "t", ORDERS, keys=("user_id",))


@pytest.mark.parametrize(("declared", "size"), [("varchar(100)", 100), ("char(10)", 10), ("VARCHAR(7)", 7)])
def test_string_size_comes_from_jdbc_metadata(declared: str, size: int) -> None:
    assert string_size(jdbc_string("s", declared)) == size


def test_string_size_comes_from_spark_varchar_and_char_types() -> None:
    assert string_size(T.StructField("s", T.VarcharType(30))) == 30
    assert string_size(T.StructField("s", T.CharType(2))) == 2
    assert column_type("mysql", T.StructField("s", T.VarcharType(30))) == "VARCHAR(30)"


def test_unsized_string_gets_the_default_varchar() -> None:
    assert column_type("postgresql", T.StructField("s", T.StringType())) == f"VARCHAR({DEFAULT_VARCHAR})"


def test_declared_size_wins_over_the_inherited_one() -> None:
    assert column_type("mysql", jdbc_string("status", "varchar(20)"), size=40) == "VARCHAR(40)"


def test_very_long_strings_become_text_in_mysql_only() -> None:
    field = T.StructField("description", T.StringType())
    assert column_type("mysql", field, size=20000) == "MEDIUMTEXT"
    assert column_type("mysql", field, size=20_000_000) == "LONGTEXT"
    assert column_type("postgresql", field, size=20000) == "VARCHAR(20000)"


@pytest.mark.parametrize(("spark_type", "mysql", "postgresql"), [
    (T.DecimalType(10, 2), "DECIMAL(10,2)", "DECIMAL(10,2)"),
    (T.DecimalType(38, 0), "DECIMAL(38,0)", "DECIMAL(38,0)"),
    (T.TimestampType(), "DATETIME(6)", "TIMESTAMP"),
    (T.TimestampNTZType(), "DATETIME(6)", "TIMESTAMP"),
    (T.DateType(), "DATE", "DATE"),
    (T.IntegerType(), "INT", "INTEGER"),
    (T.LongType(), "BIGINT", "BIGINT"),
    (T.BooleanType(), "BOOLEAN", "BOOLEAN"),
    (T.DoubleType(), "DOUBLE", "DOUBLE PRECISION"),
    (T.BinaryType(), "LONGBLOB", "BYTEA"),
], ids=lambda v: v.simpleString() if isinstance(v, T.DataType) else None)
def test_column_types_per_dialect(spark_type, mysql: str, postgresql: str) -> None:
    field = T.StructField("c", spark_type)
    assert (column_type("mysql", field), column_type("postgresql", field)) == (mysql, postgresql)


def test_nested_types_are_refused_with_the_column_name() -> None:
    with pytest.raises(TypeError, match="'tags'.*array<string>"):
        column_type("mysql", T.StructField("tags", T.ArrayType(T.StringType())))


def test_declared_sizes_come_from_casts_to_varchar_in_the_sql(tmp_path: Path) -> None:
    """`cast(x as varchar(n)) as column` sizes the column (sqlglot's Spark dialect parses the
    cast as STRING, so the size must be read before that happens)."""
    loaded = sql_file(tmp_path, "-- keys: user_id\n\nselect\n    user_id,\n"
                                "    cast(first_name as varchar(100)) as first_name,\n"
                                "    cast(status as char(10)) as status,\n"
                                "    email\nfrom users\n")
    assert loaded.declared_sizes() == {"first_name": 100, "status": 10}


def test_declared_sizes_look_inside_ctes_and_keep_the_largest(tmp_path: Path) -> None:
    loaded = sql_file(tmp_path, "with a as (select cast(name as varchar(20)) as name from users),\n"
                                "b as (select cast(name as varchar(50)) as name from a)\n"
                                "select name from b\n")
    assert loaded.declared_sizes() == {"name": 50}


def test_declared_sizes_reach_the_create_table(tmp_path: Path) -> None:
    loaded = sql_file(tmp_path, "select cast(user_id as int) as user_id,\n"
                                "    cast(first_name as varchar(100)) as first_name\nfrom users\n")
    schema = T.StructType([T.StructField("user_id", T.IntegerType()),
                           T.StructField("first_name", T.StringType())])
    assert create_table("mysql", "users", schema, ("user_id",), loaded.declared_sizes()) == (
        "CREATE TABLE `users` (`user_id` INT NOT NULL, `first_name` VARCHAR(100), PRIMARY KEY (`user_id`)) "
        "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")


def test_no_casts_no_declared_sizes(tmp_path: Path) -> None:
    assert sql_file(tmp_path, "select user_id, first_name from users\n").declared_sizes() == {}
