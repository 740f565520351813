"""`python -m datagen.postgres` against the real PostgreSQL, each test in a fresh schema of its own.

Every schema is created by `local/initdb.sh postgresql` (as `make up` does) and dropped
afterwards, so the tests never touch the shared application schema.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from datagen.shop import LOYALTY_STATUSES, ORDER_STATUSES, SIZE_KEYS, TABLE_ORDER
from datagen.vocabulary import THEMES
from runner import config

pytestmark = pytest.mark.integration

SMALL = {"PG_DATAGEN_NUM_CATEGORIES": "200", "PG_DATAGEN_NUM_USERS": "300",
         "PG_DATAGEN_NUM_PRODUCTS": "50", "PG_DATAGEN_NUM_ORDERS": "600",
         "PG_DATAGEN_NUM_ORDER_DETAILS": "2400"}
ID = {"product_categories": "category_id", "users": "user_id", "products": "product_id",
      "orders": "order_id", "order_details": "order_detail_id"}


def create_schema() -> str:
    schema = f"dg_test_{uuid.uuid4().hex[:10]}"
    subprocess.run(["bash", "local/initdb.sh", "postgresql"], cwd=config.ROOT, check=True,
                   capture_output=True, env={**os.environ, "POSTGRESQL_APP_SCHEMA": schema})
    return schema


def connect(schema: str):
    return dataclasses.replace(config.connection("postgresql"), schema=schema).connect()


def drop_schema(schema: str) -> None:
    db = connect(schema)
    with db.cursor() as cur:
        cur.execute(f'drop schema if exists "{schema}" cascade')
    db.commit()
    db.close()


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh schema with the five empty source tables, dropped afterwards."""
    name = create_schema()
    yield name
    drop_schema(name)


def datagen_env(schema: str, **overrides: str) -> dict[str, str]:
    return {**os.environ, "POSTGRESQL_APP_SCHEMA": schema, **overrides}


def run_datagen(schema: str, *args: str, **overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "datagen.postgres", *args], cwd=config.ROOT,
                          env=datagen_env(schema, **overrides), capture_output=True, text=True,
                          timeout=600)


def query(db, sql: str, *params) -> list[tuple]:
    with db.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    db.rollback()
    return rows


def scalar(db, sql: str, *params):
    return query(db, sql, *params)[0][0]


def counts(db) -> dict[str, int]:
    return {t: scalar(db, f"select count(*) from {t}") for t in TABLE_ORDER}


def expected_counts(sizes: dict[str, str] | None = None, scale: int = 1) -> dict[str, int]:
    value = {key: int((sizes or {}).get(key) or config.env_int(key)) * scale
             for key in SIZE_KEYS.values()}
    return {"product_categories": len(THEMES) + value["PG_DATAGEN_NUM_CATEGORIES"],
            "users": value["PG_DATAGEN_NUM_USERS"], "products": value["PG_DATAGEN_NUM_PRODUCTS"],
            "orders": value["PG_DATAGEN_NUM_ORDERS"],
            "order_details": value["PG_DATAGEN_NUM_ORDER_DETAILS"]}


def checksums(db) -> dict[str, str]:
    return {t: scalar(db, f"select md5(coalesce(string_agg(x::text, '|' order by {ID[t]}), '')) "
                          f"from {t} x") for t in TABLE_ORDER}


# --- the configured (default) dataset, generated once for the checks below -------------------

@pytest.fixture(scope="module")
def shop() -> Iterator[tuple[str, object, subprocess.CompletedProcess]]:
    name = create_schema()
    result = run_datagen(name)
    db = connect(name)
    yield name, db, result
    db.close()
    drop_schema(name)


def test_run_succeeds_and_reports_every_table(shop):
    _, _, result = shop
    assert result.returncode == 0, result.stderr
    for table in TABLE_ORDER:
        assert f"{table}: " in result.stdout and "rows loaded" in result.stdout


def test_row_counts_match_the_configured_sizes(shop):
    _, db, _ = shop
    assert counts(db) == expected_counts()


def test_every_foreign_key_resolves(shop):
    _, db, _ = shop
    orphans = {
        "category parent": "select count(*) from product_categories c left join product_categories p "
                           "on p.category_id = c.parent_category_id "
                           "where c.parent_category_id is not null and p.category_id is null",
        "product category": "select count(*) from products x left join product_categories c "
                            "using (category_id) where c.category_id is null",
        "order user": "select count(*) from orders o left join users u using (user_id) "
                      "where u.user_id is null",
        "detail order": "select count(*) from order_details d left join orders o using (order_id) "
                        "where o.order_id is null",
        "detail product": "select count(*) from order_details d left join products p "
                          "using (product_id) where p.product_id is null",
    }
    assert {name: scalar(db, sql) for name, sql in orphans.items()} == dict.fromkeys(orphans, 0)


def test_category_tree_has_no_cycles(shop):
    _, db, _ = shop
    assert scalar(db, "select count(*) from product_categories "
                      "where parent_category_id >= category_id") == 0
    # Walking up from every category reaches a root; a cycle would walk on past any depth.
    assert scalar(db, """
        with recursive walk (category_id, parent_id, depth) as (
            select category_id, parent_category_id, 1 from product_categories
            union all
            select w.category_id, c.parent_category_id, w.depth + 1
            from walk w join product_categories c on c.category_id = w.parent_id
            where w.depth < 50
        )
        select count(*) from walk where depth >= 50""") == 0
    assert scalar(db, "select count(*) from product_categories where parent_category_id is null") \
        == len(THEMES)


def test_total_price_is_quantity_times_unit_price(shop):
    _, db, _ = shop
    assert scalar(db, "select count(*) from order_details "
                      "where total_price <> quantity * price_per_unit or quantity < 1") == 0


def test_order_total_is_the_sum_of_its_details(shop):
    _, db, _ = shop
    assert scalar(db, """
        select count(*) from orders o
        left join (select order_id, sum(total_price) as total from order_details group by order_id) d
            using (order_id)
        where o.total_amount <> coalesce(d.total, 0)""") == 0


def test_every_order_has_a_detail(shop):
    _, db, _ = shop
    assert scalar(db, "select count(*) from orders o where not exists "
                      "(select 1 from order_details d where d.order_id = o.order_id)") == 0


def test_delivery_comes_after_the_order(shop):
    _, db, _ = shop
    assert scalar(db, "select count(*) from orders where delivery_date <= order_date") == 0
    assert scalar(db, "select count(*) from orders where delivery_date is not null") > 0


def test_orders_come_after_their_users_registration(shop):
    _, db, _ = shop
    assert scalar(db, "select count(*) from orders o join users u using (user_id) "
                      "where o.order_date < u.registration_date") == 0


def test_statuses_and_loyalty_tiers_come_from_their_sets(shop):
    _, db, _ = shop
    statuses = {row[0] for row in query(db, "select distinct status from orders")}
    assert {"Pending", "Completed"} <= statuses <= set(ORDER_STATUSES)
    assert {row[0] for row in query(db, "select distinct loyalty_status from users")} == \
        set(LOYALTY_STATUSES)


def test_people_look_real(shop):
    _, db, _ = shop
    assert scalar(db, "select count(*) from users where email !~ '^[a-z.]+[0-9]+@[a-z]+\\.com$' "
                      "or phone !~ '[0-9]{3}.*[0-9]{4}' or first_name !~ '^[A-Z]'") == 0
    assert scalar(db, "select count(distinct email) = count(*) from users")
    assert scalar(db, "select count(distinct first_name) from users") > 100


def test_prices_and_amounts_are_plausible(shop):
    _, db, _ = shop
    assert scalar(db, "select min(price) > 0 and max(price) < 10000 from products")
    assert scalar(db, "select max(total_amount) < 100000000 from orders")


def test_sequences_continue_after_the_generated_ids(shop):
    _, db, _ = shop
    with db.cursor() as cur:
        cur.execute("insert into users (first_name, last_name, email, registration_date) "
                    "values ('New', 'User', 'new.user@example.com', now()) returning user_id")
        new_id = cur.fetchone()[0]
        cur.execute("select max(user_id) from users where email <> 'new.user@example.com'")
        assert new_id == cur.fetchone()[0] + 1
    db.rollback()


def definitions(db, schema: str) -> set[tuple]:
    """Constraint and index definitions of the schema (its name left out)."""
    rows = query(db, """
        select conrelid::regclass::text, conname, pg_get_constraintdef(oid) from pg_constraint
        where connamespace = %s::regnamespace
        union all
        select indrelid::regclass::text, indexrelid::regclass::text, pg_get_indexdef(indexrelid)
        from pg_index join pg_class on pg_class.oid = indexrelid
        where relnamespace = %s::regnamespace""", schema, schema)
    return {tuple(value.replace(f"{schema}.", "") for value in row) for row in rows}


def test_constraints_and_indexes_are_as_initdb_made_them(shop):
    name, db, _ = shop
    fresh = create_schema()
    try:
        fresh_db = connect(fresh)
        expected = definitions(fresh_db, fresh)
        fresh_db.close()
    finally:
        drop_schema(fresh)
    assert len(expected) > 10
    assert definitions(db, name) == expected


def test_second_run_inserts_nothing(shop):
    name, db, _ = shop
    before = checksums(db)
    result = run_datagen(name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("already holds rows, left alone") == len(TABLE_ORDER)
    assert "nothing to do" in result.stdout
    assert checksums(db) == before


# --- reproducibility, interruption, bad input -----------------------------------------------

def test_same_seed_gives_identical_tables():
    schemas = [create_schema() for _ in range(3)]
    try:
        for schema, seed in zip(schemas, ("5", "5", "6")):
            assert run_datagen(schema, "--seed", seed, **SMALL).returncode == 0
        dbs = [connect(schema) for schema in schemas]
        same, same_again, other = (checksums(db) for db in dbs)
        for db in dbs:
            db.close()
    finally:
        for schema in schemas:
            drop_schema(schema)
    assert same == same_again
    assert all(other[t] != same[t] for t in ("users", "products", "orders", "order_details"))


def test_killed_run_leaves_whole_tables_and_rerun_completes(schema):
    scale = 4  # large enough that the kill lands while order_details is being copied
    process = subprocess.Popen([sys.executable, "-m", "datagen.postgres", "--scale", str(scale)],
                               cwd=config.ROOT, env=datagen_env(schema), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if line.startswith("order_details: loading"):
            process.send_signal(signal.SIGKILL)  # in the middle of the last table's COPY
            break
    process.wait()
    assert process.returncode == -signal.SIGKILL

    db = connect(schema)
    expected = expected_counts(scale=scale)
    after_kill = counts(db)
    assert after_kill == {**expected, "order_details": 0}

    result = run_datagen(schema, "--scale", str(scale))
    assert result.returncode == 0, result.stderr
    assert counts(db) == expected
    assert scalar(db, """
        select count(*) from orders o
        left join (select order_id, sum(total_price) as total from order_details group by order_id) d
            using (order_id)
        where o.total_amount <> coalesce(d.total, 0)""") == 0
    db.close()


def test_concurrent_runs_load_every_table_once(schema):
    processes = [subprocess.Popen([sys.executable, "-m", "datagen.postgres"], cwd=config.ROOT,
                                  env=datagen_env(schema, **SMALL), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    db = connect(schema)
    assert counts(db) == expected_counts(SMALL)
    db.close()


@pytest.mark.parametrize("value", ["many", "-1"])
def test_bad_size_stops_with_one_line_and_writes_nothing(schema, value):
    result = run_datagen(schema, PG_DATAGEN_NUM_ORDERS=value)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "PG_DATAGEN_NUM_ORDERS" in result.stderr
    db = connect(schema)
    assert counts(db) == dict.fromkeys(TABLE_ORDER, 0)
    db.close()


def test_unreachable_database_names_host_and_port(schema):
    result = run_datagen(schema, POSTGRESQL_APP_HOST="127.0.0.1", POSTGRESQL_APP_PORT="1")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "127.0.0.1:1" in result.stderr


def test_missing_tables_point_at_initdb():
    result = run_datagen(f"dg_absent_{uuid.uuid4().hex[:8]}")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "local/initdb.sh" in result.stderr


def test_rows_of_another_seed_are_not_built_on(schema):
    assert run_datagen(schema, "--seed", "1", **SMALL).returncode == 0
    db = connect(schema)
    with db.cursor() as cur:
        cur.execute("delete from order_details")
    db.commit()

    refused = run_datagen(schema, "--seed", "2", **SMALL)
    assert refused.returncode == 1
    assert "already holds rows other than" in refused.stderr and "--seed" in refused.stderr
    assert scalar(db, "select count(*) from order_details") == 0

    assert run_datagen(schema, "--seed", "1", **SMALL).returncode == 0
    assert counts(db) == expected_counts(SMALL)
    db.close()
