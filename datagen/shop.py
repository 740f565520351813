"""Generate the shop's five source tables in bulk, consistent and reproducible from a seed.

Every table gets its own random stream derived from the seed, and "now" is derived from the
seed too (never the wall clock), so the same seed and sizes always give the same rows. Ids are
explicit (1..n); every foreign key points at an id that exists, the category tree points from
each subcategory to a smaller id (no cycles), `total_price = quantity * price_per_unit` and
`orders.total_amount` is the exact sum of its details (all money in integer cents).

Example:
    >>> from datagen.shop import Sizes, generate_shop
    >>> tables = {t.name: t for t in generate_shop(Sizes(20, 10, 5, 8, 30), seed=1)}
    >>> [len(tables[name]) for name in TABLE_ORDER]
    [34, 10, 5, 8, 30]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np

from datagen import people
from datagen.table import Table
from datagen.vocabulary import FEATURES, MODEL_SUFFIXES, THEMES, plural, singular

TABLE_ORDER = ("product_categories", "users", "products", "orders", "order_details")
"""Load order: parents before children."""

ID_COLUMNS = {
    "product_categories": "category_id",
    "users": "user_id",
    "products": "product_id",
    "orders": "order_id",
    "order_details": "order_detail_id",
}

ORDER_STATUSES = ("Pending", "Processing", "Shipped", "Completed", "Cancelled")
LOYALTY_STATUSES = ("Gold", "Silver", "Bronze")

DAY = np.timedelta64(86400, "s")
_EPOCH = np.datetime64("2025-01-01T00:00:00", "s")


@dataclass(frozen=True)
class Sizes:
    """How many rows to generate: subcategories (on top of the top-level categories), users,
    products, orders and order details."""

    categories: int
    users: int
    products: int
    orders: int
    order_details: int

    def scaled(self, factor: int) -> Sizes:
        """Every size multiplied by `factor`."""
        return Sizes(*(getattr(self, f.name) * factor for f in fields(self)))

    def rows(self, table: str) -> int:
        """The number of rows `table` gets (categories include the top-level ones)."""
        if table == "product_categories":
            return len(THEMES) + self.categories
        return getattr(self, table)

    @property
    def total(self) -> int:
        return sum(self.rows(table) for table in TABLE_ORDER)


SIZE_KEYS = {
    "categories": "PG_DATAGEN_NUM_CATEGORIES",
    "users": "PG_DATAGEN_NUM_USERS",
    "products": "PG_DATAGEN_NUM_PRODUCTS",
    "orders": "PG_DATAGEN_NUM_ORDERS",
    "order_details": "PG_DATAGEN_NUM_ORDER_DETAILS",
}
"""The `.env` key of each size."""


class InconsistentSizes(ValueError):
    """The sizes cannot make consistent data (e.g. orders without any user)."""


def check_sizes(sizes: Sizes) -> None:
    """Raise InconsistentSizes, naming the keys, if children would have no parent to point at."""
    for child, parent in (("orders", "users"), ("order_details", "orders"),
                          ("order_details", "products")):
        if getattr(sizes, child) > 0 and getattr(sizes, parent) == 0:
            raise InconsistentSizes(
                f"{SIZE_KEYS[child]}={getattr(sizes, child)} needs {SIZE_KEYS[parent]} above 0")


def now(seed: int) -> np.datetime64:
    """The dataset's "now": a moment in 2025 derived from the seed, so reruns match exactly."""
    offset = np.random.default_rng([seed, 0]).integers(0, 365 * 86400)
    return _EPOCH + np.timedelta64(int(offset), "s")


def generate_shop(sizes: Sizes, seed: int) -> Iterator[Table]:
    """Yield the five tables in load order; each is generated only when the caller asks for it."""
    check_sizes(sizes)
    anchor = now(seed)

    def rng(stream: int) -> np.random.Generator:
        return np.random.default_rng([seed, stream])

    categories, themes = _categories(sizes.categories, rng(1))
    yield categories
    users = _users(sizes.users, anchor, rng(2))
    yield users
    products = _products(sizes.products, themes, anchor, rng(3))
    yield products
    orders, details = _orders(sizes.orders, sizes.order_details, users, products, anchor, rng(4))
    yield orders
    yield details


def _categories(count: int, rng: np.random.Generator) -> tuple[Table, np.ndarray]:
    """Top-level themes, then `count` subcategories in three levels below them.

    Level 2 (5%) hangs under a theme, level 3 (25%) under a level-2 category, the rest under a
    level-3 one: parents always come earlier, so parent ids are smaller and there are no cycles.
    Returns the table and each category's theme index (by id - 1) for naming products.
    """
    top = len(THEMES)
    level2 = min(count, int(np.ceil(count * 0.05)))
    level3 = min(count, level2 + int(np.ceil(count * 0.25)))
    index = np.arange(count)
    low = np.where(index < level2, 1, np.where(index < level3, top + 1, top + level2 + 1))
    high = np.where(index < level2, top, np.where(index < level3, top + level2, top + level3))
    parents = rng.integers(low, high + 1) if count else np.zeros(0, dtype=np.int64)

    themes = np.empty(top + count, dtype=np.int64)
    themes[:top] = np.arange(top)
    # Each level's parents sit in an earlier level, whose themes are already known.
    for start, stop in ((0, level2), (level2, level3), (level3, count)):
        themes[top + start:top + stop] = themes[parents[start:stop] - 1]

    names = np.empty(top + count, dtype=object)
    names[:top] = [theme.name for theme in THEMES]
    adjective_pick = rng.random(count)
    noun_pick = rng.random(count)
    for i in range(count):
        theme = THEMES[themes[top + i]]
        adjective = theme.adjectives[int(adjective_pick[i] * len(theme.adjectives))]
        noun = plural(theme.nouns[int(noun_pick[i] * len(theme.nouns))])
        names[top + i] = f"{adjective} {noun}"

    table = Table("product_categories", {
        "category_id": ("int", np.arange(1, top + count + 1)),
        "name": ("text", names),
        "parent_category_id": ("int", np.concatenate([np.full(top, -1), parents]).astype(np.int64)),
    })
    return table, themes


def _users(count: int, anchor: np.datetime64, rng: np.random.Generator) -> Table:
    """Users with Faker's names, unique e-mails (the user id is part of them), phones,
    registration in the three years before "now", and a loyalty tier (Bronze most common)."""
    first, last = people.names(count, rng)
    ids = np.arange(1, count + 1)
    emails = people.emails(first, last, [str(i) for i in ids.tolist()], rng)
    registered = anchor - rng.integers(0, 3 * 365 * 86400, count).astype("timedelta64[s]")
    loyalty = np.array(LOYALTY_STATUSES, dtype=object)[rng.choice(3, count, p=[0.1, 0.3, 0.6])]
    return Table("users", {
        "user_id": ("int", ids),
        "first_name": ("text", first),
        "last_name": ("text", last),
        "email": ("text", emails),
        "phone": ("text", people.phones(count, rng)),
        "registration_date": ("timestamp", registered),
        "loyalty_status": ("text", loyalty),
    })


def _products(count: int, themes: np.ndarray, anchor: np.datetime64,
              rng: np.random.Generator) -> Table:
    """Products named `<brand> <adjective> <noun>[ <model>]` from their category's theme, priced
    around the theme's median (ending in .99), listed three to six years before "now"."""
    category = rng.integers(1, len(themes) + 1, count)
    theme = themes[category - 1]
    brands = people.brands(count, rng)
    adjective_pick, noun_pick = rng.random(count), rng.random(count)
    suffix = rng.integers(0, len(MODEL_SUFFIXES), count)
    feature = rng.integers(0, len(FEATURES), count)
    other_feature = (feature + rng.integers(1, len(FEATURES), count)) % len(FEATURES)
    names = np.empty(count, dtype=object)
    descriptions = np.empty(count, dtype=object)
    medians = np.array([t.median_price for t in THEMES])
    for i in range(count):
        t = THEMES[theme[i]]
        adjective = t.adjectives[int(adjective_pick[i] * len(t.adjectives))]
        noun = singular(t.nouns[int(noun_pick[i] * len(t.nouns))])
        names[i] = f"{brands[i]} {adjective} {noun}{MODEL_SUFFIXES[suffix[i]]}"
        descriptions[i] = (f"{adjective} {noun.lower()} by {brands[i]}. "
                           f"{FEATURES[feature[i]]}. {FEATURES[other_feature[i]]}.")
    dollars = np.clip(np.rint(medians[theme] * rng.lognormal(0.0, 0.5, count)), 1, 9999)
    created = anchor - rng.integers(3 * 365 * 86400, 6 * 365 * 86400, count).astype("timedelta64[s]")
    in_stock = rng.random(count) > 0.05
    return Table("products", {
        "product_id": ("int", np.arange(1, count + 1)),
        "name": ("text", names),
        "description": ("text", descriptions),
        "category_id": ("int", category),
        "price": ("money", dollars.astype(np.int64) * 100 - 1),
        "stock_quantity": ("int", np.where(in_stock, rng.integers(1, 1000, count), 0)),
        "creation_date": ("timestamp", created),
    })


def _orders(count: int, detail_count: int, users: Table, products: Table, anchor: np.datetime64,
            rng: np.random.Generator) -> tuple[Table, Table]:
    """Orders and their details, generated together so totals match exactly.

    Gold and Silver users order more often; an order falls between its user's registration and
    "now"; its status follows its age (recent ones Pending/Processing/Shipped, old ones
    Completed or Cancelled) and only Completed orders have a delivery date, 1-10 days later.
    Every order gets a detail first (when there are enough), the rest are spread at random.
    """
    loyalty_weight = {"Gold": 3.0, "Silver": 1.5, "Bronze": 1.0}
    weights = rng.gamma(2.0, 1.0, len(users)) * np.array(
        [loyalty_weight[s] for s in users["loyalty_status"].tolist()])
    user_index = rng.choice(len(users), count, p=weights / weights.sum()) if count else \
        np.zeros(0, dtype=np.int64)
    registered = users["registration_date"][user_index]
    span = (anchor - registered).astype(np.int64)
    ordered = registered + (rng.random(count) * span).astype("timedelta64[s]")
    age_days = (anchor - ordered).astype(np.int64) / 86400
    status, delivered = _status_and_delivery(ordered, age_days, rng)

    # Details: one per order while there are enough, then the rest at random, sorted by order.
    first = np.arange(min(count, detail_count))
    extra = rng.integers(0, count, max(0, detail_count - count)) if count else first[:0]
    detail_order = np.sort(np.concatenate([first, extra]))
    popularity = rng.gamma(1.0, 1.0, len(products))
    detail_product = rng.choice(len(products), len(detail_order), p=popularity / popularity.sum()) \
        if len(detail_order) else detail_order
    quantity = rng.choice(np.arange(1, 6), len(detail_order), p=[0.55, 0.2, 0.12, 0.08, 0.05])
    unit_price = products["price"][detail_product]
    total_price = quantity * unit_price
    total_amount = np.zeros(count, dtype=np.int64)
    np.add.at(total_amount, detail_order, total_price)

    orders = Table("orders", {
        "order_id": ("int", np.arange(1, count + 1)),
        "user_id": ("int", users["user_id"][user_index]),
        "order_date": ("timestamp", ordered),
        "total_amount": ("money", total_amount),
        "status": ("text", np.array(ORDER_STATUSES, dtype=object)[status]),
        "delivery_date": ("timestamp", delivered),
    })
    details = Table("order_details", {
        "order_detail_id": ("int", np.arange(1, len(detail_order) + 1)),
        "order_id": ("int", detail_order + 1),
        "product_id": ("int", products["product_id"][detail_product]),
        "quantity": ("int", quantity),
        "price_per_unit": ("money", unit_price),
        "total_price": ("money", total_price),
    })
    return orders, details


def _status_and_delivery(ordered: np.ndarray, age_days: np.ndarray,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Status index into ORDER_STATUSES by age, and the delivery date (NaT unless Completed)."""
    pending, processing, shipped, completed, cancelled = range(5)
    # (age below, [(status, probability), ...]); the last bracket covers every older order.
    brackets = (
        (1, [(pending, 0.6), (processing, 0.3), (cancelled, 0.1)]),
        (3, [(processing, 0.4), (shipped, 0.5), (cancelled, 0.1)]),
        (14, [(shipped, 0.45), (completed, 0.45), (cancelled, 0.1)]),
        (np.inf, [(completed, 0.9), (cancelled, 0.1)]),
    )
    status = np.empty(len(ordered), dtype=np.int64)
    pick = rng.random(len(ordered))
    lower = -np.inf
    for upper, choices in brackets:
        in_bracket = (age_days >= lower) & (age_days < upper)
        cumulative = np.cumsum([p for _, p in choices])
        index = np.minimum(np.searchsorted(cumulative, pick[in_bracket], side="right"),
                           len(choices) - 1)
        status[in_bracket] = np.array([s for s, _ in choices])[index]
        lower = upper
    # Completed orders are at least 3 days old, so 1..min(10, age) days later is still in the past.
    max_delay = np.minimum(10.0, np.maximum(age_days, 1.0)) * 86400
    delay = (86400 + rng.random(len(ordered)) * (max_delay - 86400)).astype("timedelta64[s]")
    delivered = np.where(status == completed, ordered + delay, np.datetime64("NaT", "s"))
    return status, delivered
