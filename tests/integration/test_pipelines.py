"""`replicate` and `marts` on the real PostgreSQL and MySQL, in a scratch schema and database.

The shop is generated into a fresh PostgreSQL schema (plus a few edge-case rows: a user with a
NULL loyalty status, a user without orders, a product never sold), replicated into a fresh MySQL
database, and the marts are built there. Each mart is then compared with the same aggregate
computed directly in PostgreSQL on the source tables, independent of Spark. The shared schema
and database are never touched; both scratch ones are dropped at the end.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from runner import config
from tests.fixtures.scratch import Scratch

pytestmark = pytest.mark.integration

TABLES = ("product_categories", "users", "products", "orders", "order_details")
KEYS = {"product_categories": "category_id", "users": "user_id", "products": "product_id",
        "orders": "order_id", "order_details": "order_detail_id"}
SIZES = {"PG_DATAGEN_NUM_CATEGORIES": "300", "PG_DATAGEN_NUM_USERS": "800",
         "PG_DATAGEN_NUM_PRODUCTS": "120", "PG_DATAGEN_NUM_ORDERS": "2000",
         "PG_DATAGEN_NUM_ORDER_DETAILS": "8000"}
LOCKED = "holds its lock"


# --- the same aggregates, computed by PostgreSQL on the source tables --------------------------

MARTS_IN_POSTGRESQL = {
    "mart_user_activity": """
        select o.user_id, u.first_name, u.last_name, o.status,
               count(*) as order_count, sum(o.total_amount) as total_spent
        from orders o
        join users u on u.user_id = o.user_id
        group by o.user_id, u.first_name, u.last_name, o.status""",
    "mart_product_sales": """
        select d.product_id, p.name, o.status,
               sum(d.quantity) as total_quantity_sold, sum(d.total_price) as total_sales
        from order_details d
        join products p on p.product_id = d.product_id
        join orders o on o.order_id = d.order_id
        group by d.product_id, p.name, o.status""",
    "mart_average_check": """
        select o.status, coalesce(u.loyalty_status, 'Unknown') as loyalty_status,
               round(avg(o.total_amount), 2) as average_check
        from orders o
        join users u on u.user_id = o.user_id
        group by o.status, coalesce(u.loyalty_status, 'Unknown')""",
}
MART_KEYS = {"mart_user_activity": ["user_id", "status"], "mart_product_sales": ["product_id", "status"],
             "mart_average_check": ["status", "loyalty_status"]}


# --- scratch databases and runs ----------------------------------------------------------------

def query(connection, sql: str, *args) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, args or None)
        rows = [tuple(row) for row in cursor.fetchall()]
    connection.rollback()
    return rows


def run_pipeline(pipeline: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`python -m runner run <pipeline>`; waits its turn while another run of it holds the lock.

    The runner allows one run of a pipeline at a time per database server, and other test
    modules (or the demo) may be running the same pipeline on their own scratch tables.
    """
    while True:
        result = subprocess.run([sys.executable, "-m", "runner", "run", str(pipeline)], cwd=config.ROOT,
                                env=env, capture_output=True, text=True, timeout=1800)
        if not (result.returncode == 3 and LOCKED in result.stderr):
            return result
        time.sleep(5)


def assert_ran(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stderr[-3000:]}"


def add_edge_cases(pg) -> dict[str, int]:
    """Rows the generator never makes; returns their ids."""
    with pg.cursor() as cursor:
        cursor.execute("""
            insert into users (first_name, last_name, email, phone, registration_date, loyalty_status)
            values ('Nell', 'Nobody', 'nell.nobody@example.org', null, '2024-01-02 03:04:05', null),
                   ('Otto', 'Orderless', 'otto.orderless@example.org', '555-0199', '2024-01-03 00:00:00', 'Gold')
            returning user_id""")
        no_loyalty, no_orders = (row[0] for row in cursor.fetchall())
        cursor.execute("""
            insert into products (name, description, category_id, price, stock_quantity, creation_date)
            select 'Never Sold Lamp', null, min(category_id), 12.34, 7, '2024-02-01 12:00:00'
            from product_categories
            returning product_id""")
        never_sold = cursor.fetchone()[0]
        cursor.execute("select min(product_id) from products")
        product = cursor.fetchone()[0]
        for status, amount in (("Completed", "10.01"), ("Completed", "10.00"), ("Cancelled", "7.50")):
            cursor.execute("""
                insert into orders (user_id, order_date, total_amount, status, delivery_date)
                values (%s, '2024-03-01 10:00:00', %s, %s, null) returning order_id""",
                           (no_loyalty, amount, status))
            order_id = cursor.fetchone()[0]
            cursor.execute("""
                insert into order_details (order_id, product_id, quantity, price_per_unit, total_price)
                values (%s, %s, 1, %s, %s)""", (order_id, product, amount, amount))
    pg.commit()
    return {"no_loyalty": no_loyalty, "no_orders": no_orders, "never_sold": never_sold}


@pytest.fixture(scope="module")
def shop() -> Iterator[tuple[Scratch, dict[str, int], dict[str, subprocess.CompletedProcess]]]:
    """Generated shop + edge cases in PostgreSQL, replicated and turned into marts in MySQL."""
    scratch = Scratch(f"pl_test_{uuid.uuid4().hex[:10]}")
    scratch.create()
    try:
        generated = subprocess.run([sys.executable, "-m", "datagen.postgres"], cwd=config.ROOT,
                                   env={**scratch.env, **SIZES}, capture_output=True, text=True, timeout=600)
        assert generated.returncode == 0, generated.stderr
        pg = scratch.pg()
        edge = add_edge_cases(pg)
        pg.close()
        runs = {"replicate": run_pipeline("replicate", scratch.env)}
        assert_ran(runs["replicate"])
        runs["marts"] = run_pipeline("marts", scratch.env)
        assert_ran(runs["marts"])
        yield scratch, edge, runs
    finally:
        scratch.drop()


@pytest.fixture(scope="module")
def pg(shop):
    connection = shop[0].pg()
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def my(shop):
    connection = shop[0].mysql()
    yield connection
    connection.close()


# --- replicate ---------------------------------------------------------------------------------

@pytest.mark.parametrize("table", TABLES)
def test_replica_holds_exactly_the_source_rows(pg, my, table):
    order = KEYS[table]
    source = query(pg, f"select * from {table} order by {order}")
    replica = query(my, f"select * from `{table}` order by {order}")
    assert len(replica) == len(source)
    assert replica == source


def test_replicate_log_names_every_table_and_its_verified_copy(shop):
    log = shop[2]["replicate"].stderr
    for table in TABLES:
        assert f"staged for mysql.{table} (overwrite)" in log
        assert f"verified mysql.{table}: " in log and f" rows equal to postgresql.{table}" in log


@pytest.mark.parametrize("table", TABLES)
def test_replica_has_the_source_primary_key_and_column_types(shop, pg, my, table):
    source = {name: (kind, length, precision, scale) for name, kind, length, precision, scale in query(pg, """
        select column_name, data_type, character_maximum_length, numeric_precision, numeric_scale
        from information_schema.columns where table_schema = %s and table_name = %s""", shop[0].name, table)}
    replica = {name: (kind, length, precision, scale) for name, kind, length, precision, scale in query(my, """
        select column_name, data_type, character_maximum_length, numeric_precision, numeric_scale
        from information_schema.columns where table_schema = %s and table_name = %s""", shop[0].name, table)}
    assert list(replica) == list(source)
    expected = {"character varying": "varchar", "integer": "int", "numeric": "decimal",
                "timestamp without time zone": "datetime"}
    for column, (kind, length, precision, scale) in source.items():
        got = replica[column]
        assert got[0] == expected[kind], f"{table}.{column}: {got[0]} in MySQL, {kind} in PostgreSQL"
        if kind == "character varying":
            assert got[1] == length, f"{table}.{column}: varchar({got[1]}) in MySQL, varchar({length}) in PostgreSQL"
        if kind == "numeric":
            assert (got[2], got[3]) == (precision, scale), f"{table}.{column}: decimal{got[2:]} in MySQL"
    key = query(my, """select column_name from information_schema.key_column_usage
                       where table_schema = %s and table_name = %s and constraint_name = 'PRIMARY'""",
                shop[0].name, table)
    assert key == [(KEYS[table],)]


# A staged copy that differs from its source (a changed value, a missing or an extra row) fails
# the run: tests/integration/test_replica_verification.py.


# --- marts ---------------------------------------------------------------------------------------

def _normalized(rows: list[tuple]) -> list[tuple]:
    """Rows with ints and Decimals made comparable across drivers, sorted."""
    return sorted(tuple(int(v) if isinstance(v, int) else v for v in row) for row in rows)


@pytest.mark.parametrize("mart", list(MARTS_IN_POSTGRESQL))
def test_mart_equals_the_aggregate_computed_in_postgresql(pg, my, mart):
    expected = _normalized(query(pg, MARTS_IN_POSTGRESQL[mart]))
    columns = [row[0] for row in query(my, """
        select column_name from information_schema.columns
        where table_schema = database() and table_name = %s order by ordinal_position""", mart)]
    actual = _normalized(query(my, f"select {', '.join(columns)} from `{mart}`"))
    assert len(actual) == len(expected) > 0
    assert actual == expected


@pytest.mark.parametrize("mart", list(MARTS_IN_POSTGRESQL))
def test_mart_primary_key_is_its_grain(shop, my, mart):
    key = query(my, """select column_name from information_schema.key_column_usage
                       where table_schema = %s and table_name = %s and constraint_name = 'PRIMARY'
                       order by ordinal_position""", shop[0].name, mart)
    assert [k for (k,) in key] == MART_KEYS[mart]


def test_marts_money_and_counts_have_deliberate_types(shop, my):
    types = dict(query(my, """select concat(table_name, '.', column_name), column_type
                              from information_schema.columns
                              where table_schema = %s and table_name like 'mart%%'""", shop[0].name))
    assert types["mart_user_activity.order_count"] == "bigint(20)"
    assert types["mart_user_activity.total_spent"] == "decimal(15,2)"
    assert types["mart_product_sales.total_quantity_sold"] == "bigint(20)"
    assert types["mart_product_sales.total_sales"] == "decimal(15,2)"
    assert types["mart_average_check.average_check"] == "decimal(12,2)"


def test_null_loyalty_status_is_reported_as_unknown(shop, my):
    rows = query(my, "select status, average_check from mart_average_check "
                     "where loyalty_status = 'Unknown' order by status")
    # the only user without a loyalty status ordered 10.01 and 10.00 (Completed) and 7.50 (Cancelled)
    assert rows == [("Cancelled", Decimal("7.50")), ("Completed", Decimal("10.01"))]


def test_user_with_orders_in_several_statuses_has_a_row_per_status(shop, my):
    user = shop[1]["no_loyalty"]
    rows = query(my, "select status, order_count, total_spent from mart_user_activity "
                     "where user_id = %s order by status", user)
    assert rows == [("Cancelled", 1, Decimal("7.50")), ("Completed", 2, Decimal("20.01"))]


def test_user_without_orders_and_product_never_sold_have_no_rows(shop, my):
    assert query(my, "select count(*) from mart_user_activity where user_id = %s", shop[1]["no_orders"]) == [(0,)]
    assert query(my, "select count(*) from mart_product_sales where product_id = %s",
                 shop[1]["never_sold"]) == [(0,)]


def test_marts_log_every_check_passed(shop):
    log = shop[2]["marts"].stderr
    for check in ("120_check_marts_reconcile_with_source",):
        assert any(check in line and "check passed" in line for line in log.splitlines()), log[-2000:]


# --- adding a mart -------------------------------------------------------------------------------

NEW_MART = """\
-- mode: overwrite
-- keys: category_id, status

-- Revenue per product category and order status: a mart added by writing one file.

with

category_lines as (

    select
        products.category_id,
        orders.status,
        order_details.total_price

    from order_details
    inner join products
        on order_details.product_id = products.product_id
    inner join orders
        on order_details.order_id = orders.order_id

),

category_sales as (

    select
        category_id,
        status,
        cast(sum(total_price) as decimal(15, 2)) as total_sales

    from category_lines
    group by
        category_id,
        status

)

select * from category_sales
"""


def test_adding_a_mart_is_adding_one_sql_file(shop, pg, tmp_path):
    """A copy of sql/marts plus one new file: the runner builds and publishes the new mart too."""
    scratch = shop[0]
    marts = tmp_path / "marts"
    shutil.copytree(config.ROOT / "sql" / "marts", marts)
    (marts / "040_mart_category_sales.sql").write_text(NEW_MART)

    assert_ran(run_pipeline(marts, scratch.env))

    my = scratch.mysql()
    try:
        actual = _normalized(query(my, "select category_id, status, total_sales from mart_category_sales"))
        key = query(my, """select column_name from information_schema.key_column_usage
                           where table_schema = database() and table_name = 'mart_category_sales'
                           and constraint_name = 'PRIMARY' order by ordinal_position""")
    finally:
        my.close()
    expected = _normalized(query(pg, """
        select p.category_id, o.status, sum(d.total_price)
        from order_details d
        join products p on p.product_id = d.product_id
        join orders o on o.order_id = d.order_id
        group by p.category_id, o.status"""))
    assert actual == expected and len(actual) > 0
    assert [k for (k,) in key] == ["category_id", "status"]


# --- last, because it changes the source: a timestamp with a fraction of a second ------------

def test_sub_second_timestamps_survive_replication(shop, pg, my):
    """PostgreSQL keeps microseconds; the replica must too, or the checksum check fails the run."""
    scratch, edge, _ = shop
    with pg.cursor() as cursor:
        cursor.execute("update users set registration_date = '2024-01-02 03:04:05.678901' where user_id = %s",
                       (edge["no_orders"],))
    pg.commit()

    assert_ran(run_pipeline("replicate", scratch.env))

    assert query(my, "select registration_date from users where user_id = %s", edge["no_orders"]) == \
        query(pg, "select registration_date from users where user_id = %s", edge["no_orders"])
