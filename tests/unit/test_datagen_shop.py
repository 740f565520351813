"""The generated shop is consistent, realistic and reproducible (no database needed)."""

from __future__ import annotations

import numpy as np
import pytest

from datagen.shop import LOYALTY_STATUSES, ORDER_STATUSES, InconsistentSizes, Sizes, check_sizes, generate_shop, now
from datagen.table import copy_text
from datagen.vocabulary import THEMES

SIZES = Sizes(categories=300, users=400, products=60, orders=900, order_details=3000)


def shop(sizes: Sizes = SIZES, seed: int = 3) -> dict:
    return {table.name: table for table in generate_shop(sizes, seed)}


@pytest.fixture(scope="module")
def tables() -> dict:
    return shop()


def test_row_counts_match_the_sizes(tables):
    assert [len(tables[name]) for name in tables] == [
        len(THEMES) + 300, 400, 60, 900, 3000]


def test_ids_are_one_to_n(tables):
    for table in tables.values():
        ids = next(iter(table.columns.values()))[1]
        assert ids.tolist() == list(range(1, len(table) + 1))


def test_category_tree_points_to_smaller_ids_only(tables):
    categories = tables["product_categories"]
    parent, own = categories["parent_category_id"], categories["category_id"]
    top = parent < 0
    assert top.sum() == len(THEMES)
    assert (parent[~top] < own[~top]).all() and (parent[~top] >= 1).all()


def test_category_tree_has_several_levels(tables):
    parent = {i: p for i, p in zip(tables["product_categories"]["category_id"].tolist(),
                                   tables["product_categories"]["parent_category_id"].tolist())}

    def depth(i: int) -> int:
        return 1 if parent[i] < 0 else 1 + depth(parent[i])
    assert {depth(i) for i in parent} == {1, 2, 3, 4}


def test_foreign_keys_point_at_existing_ids(tables):
    assert np.isin(tables["products"]["category_id"], tables["product_categories"]["category_id"]).all()
    assert np.isin(tables["orders"]["user_id"], tables["users"]["user_id"]).all()
    assert np.isin(tables["order_details"]["order_id"], tables["orders"]["order_id"]).all()
    assert np.isin(tables["order_details"]["product_id"], tables["products"]["product_id"]).all()


def test_total_price_is_quantity_times_unit_price(tables):
    details = tables["order_details"]
    assert (details["total_price"] == details["quantity"] * details["price_per_unit"]).all()
    assert (details["quantity"] >= 1).all()


def test_detail_unit_price_is_the_product_price(tables):
    details, products = tables["order_details"], tables["products"]
    assert (details["price_per_unit"] == products["price"][details["product_id"] - 1]).all()


def test_order_total_is_the_sum_of_its_details(tables):
    orders, details = tables["orders"], tables["order_details"]
    sums = np.zeros(len(orders), dtype=np.int64)
    np.add.at(sums, details["order_id"] - 1, details["total_price"])
    assert (orders["total_amount"] == sums).all()


def test_every_order_has_a_detail_when_details_outnumber_orders(tables):
    assert set(tables["order_details"]["order_id"].tolist()) == set(range(1, 901))


def test_orders_without_details_total_zero_when_details_are_fewer():
    tables = shop(Sizes(5, 10, 5, 20, 8))
    details, orders = tables["order_details"], tables["orders"]
    assert len(set(details["order_id"].tolist())) == 8
    assert (orders["total_amount"] > 0).sum() == 8


def test_delivery_only_after_the_order_and_not_after_now(tables):
    orders = tables["orders"]
    delivered = ~np.isnat(orders["delivery_date"])
    assert delivered.any()
    assert (orders["delivery_date"][delivered] > orders["order_date"][delivered]).all()
    assert (orders["delivery_date"][delivered] <= now(3)).all()
    assert set(orders["status"][delivered].tolist()) == {"Completed"}


def test_orders_fall_after_their_users_registration(tables):
    users, orders = tables["users"], tables["orders"]
    registered = users["registration_date"][orders["user_id"] - 1]
    assert (orders["order_date"] >= registered).all()
    assert (orders["order_date"] <= now(3)).all()


def test_statuses_and_loyalty_come_from_their_sets():
    tables = shop(Sizes(5, 3000, 20, 20000, 20000))
    assert set(tables["orders"]["status"].tolist()) == set(ORDER_STATUSES)
    assert set(tables["users"]["loyalty_status"].tolist()) == set(LOYALTY_STATUSES)


def test_emails_are_unique_and_well_formed(tables):
    emails = tables["users"]["email"].tolist()
    assert len(set(emails)) == len(emails)
    assert all(e.count("@") == 1 and e.split("@")[1] in {"gmail.com", "yahoo.com", "hotmail.com"}
               for e in emails)


def test_text_fits_the_column_sizes(tables):
    limits = {("users", "first_name"): 100, ("users", "last_name"): 100, ("users", "email"): 255,
              ("users", "phone"): 50, ("product_categories", "name"): 100,
              ("products", "name"): 255, ("products", "description"): 1000}
    for (table, column), limit in limits.items():
        assert max(map(len, tables[table][column].tolist())) <= limit, (table, column)


def test_money_fits_numeric_10_2(tables):
    for table, column in (("products", "price"), ("orders", "total_amount"),
                          ("order_details", "total_price")):
        values = tables[table][column]
        assert values.min() >= 0 and values.max() < 10**10


def test_product_names_read_like_products(tables):
    names = tables["products"]["name"].tolist()
    nouns = {noun.split("|")[0] for theme in THEMES for noun in theme.nouns}
    assert all(any(noun in name for noun in nouns) for name in names)


def test_same_seed_gives_identical_tables():
    first, second = shop(seed=11), shop(seed=11)
    for name, table in first.items():
        assert copy_text(table) == copy_text(second[name]), name


def test_another_seed_gives_other_rows():
    assert shop(seed=1)["users"]["email"].tolist() != shop(seed=2)["users"]["email"].tolist()


def test_now_comes_from_the_seed_not_the_clock():
    assert now(5) == now(5)
    assert now(5) != now(6)


def test_scale_multiplies_every_size():
    assert SIZES.scaled(10) == Sizes(3000, 4000, 600, 9000, 30000)
    assert SIZES.rows("product_categories") == len(THEMES) + 300


@pytest.mark.parametrize("sizes, key", [
    (Sizes(1, 0, 1, 5, 5), "PG_DATAGEN_NUM_USERS"),
    (Sizes(1, 1, 0, 5, 5), "PG_DATAGEN_NUM_PRODUCTS"),
    (Sizes(1, 1, 1, 0, 5), "PG_DATAGEN_NUM_ORDERS"),
])
def test_children_without_parents_are_refused_naming_the_key(sizes, key):
    with pytest.raises(InconsistentSizes, match=key):
        check_sizes(sizes)


def test_zero_sizes_give_empty_tables():
    tables = shop(Sizes(0, 0, 0, 0, 0))
    assert [len(t) for t in tables.values()] == [len(THEMES), 0, 0, 0, 0]


def test_descriptions_name_the_product_and_two_different_selling_points(tables):
    for name, description in zip(tables["products"]["name"].tolist(),
                                 tables["products"]["description"].tolist()):
        first, second = description.split(". ")[1:3]
        assert first != second.rstrip(".")
        assert name.split()[0] in description  # the brand
