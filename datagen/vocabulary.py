"""Word lists that make generated categories and products read like a real shop's catalogue.

Faker has people, e-mails and phones but no product catalogue, so the catalogue is spelled out
here: each top-level category is a theme with its own nouns, adjectives and typical price.

Example:
    >>> from datagen.vocabulary import THEMES, plural
    >>> THEMES[0].name
    'Electronics'
    >>> plural("Knife Set"), plural("Dress|Dresses"), plural("Headphones")
    ('Knife Sets', 'Dresses', 'Headphones')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Theme:
    """A top-level category: its name, product nouns (singular, `a|b` for an irregular plural),
    adjectives, and the median price of its products in dollars."""

    name: str
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    median_price: float


def plural(noun: str) -> str:
    """The plural of a catalogue noun: `singular|plural` spells it out, else English rules."""
    if "|" in noun:
        return noun.split("|", 1)[1]
    if noun.endswith("s"):
        return noun
    if noun.endswith(("sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def singular(noun: str) -> str:
    """The singular of a catalogue noun (the part before `|`)."""
    return noun.split("|", 1)[0]


THEMES: tuple[Theme, ...] = (
    Theme("Electronics",
          ("Headphones", "Speaker", "Smartwatch|Smartwatches", "Tablet", "Laptop", "Monitor",
           "Keyboard", "Charger", "Camera", "Earbuds", "Router", "Power Bank"),
          ("Wireless", "Portable", "Smart", "Bluetooth", "4K", "Noise-Cancelling", "Compact", "Gaming"),
          120.0),
    Theme("Home & Kitchen",
          ("Blender", "Cookware Set", "Knife Set", "Coffee Maker", "Toaster", "Kettle", "Cutting Board",
           "Food Container", "Dinnerware Set", "Mixing Bowl"),
          ("Stainless Steel", "Nonstick", "Ceramic", "Electric", "Cast Iron", "Glass", "Bamboo"),
          45.0),
    Theme("Furniture",
          ("Sofa", "Office Chair", "Bookcase", "Coffee Table", "Desk", "Bed Frame", "Nightstand",
           "Dining Chair", "TV Stand", "Wardrobe"),
          ("Modern", "Ergonomic", "Solid Wood", "Mid-Century", "Folding", "Upholstered", "Rustic"),
          250.0),
    Theme("Clothing",
          ("Jacket", "Jeans", "T-Shirt", "Sweater", "Dress|Dresses", "Hoodie", "Shorts", "Socks",
           "Scarf|Scarves", "Raincoat"),
          ("Cotton", "Slim-Fit", "Oversized", "Waterproof", "Wool", "Linen", "Casual"),
          40.0),
    Theme("Shoes",
          ("Sneakers", "Running Shoes", "Boots", "Sandals", "Loafers", "Slippers", "Hiking Boots",
           "Heels"),
          ("Leather", "Lightweight", "Waterproof", "Suede", "Breathable", "Classic"),
          70.0),
    Theme("Sports & Outdoors",
          ("Yoga Mat", "Dumbbell", "Tent", "Sleeping Bag", "Backpack", "Bicycle", "Water Bottle",
           "Fishing Rod", "Helmet", "Resistance Band"),
          ("Adjustable", "Ultralight", "Insulated", "Foldable", "Heavy-Duty", "Trail"),
          60.0),
    Theme("Beauty & Personal Care",
          ("Shampoo", "Face Cream", "Serum", "Hair Dryer", "Electric Shaver", "Lip Balm", "Perfume",
           "Sunscreen"),
          ("Organic", "Hydrating", "Fragrance-Free", "Travel-Size", "Vegan", "Professional"),
          25.0),
    Theme("Toys & Games",
          ("Board Game", "Puzzle", "Building Blocks", "Doll", "Action Figure", "RC Car", "Plush Toy",
           "Card Game"),
          ("Educational", "Wooden", "Classic", "Interactive", "Collectible"),
          30.0),
    Theme("Books",
          ("Novel", "Cookbook", "Biography|Biographies", "Children's Book", "Travel Guide", "Comic Book",
           "Textbook", "Poetry Collection"),
          ("Illustrated", "Hardcover", "Paperback", "Bestselling", "Annotated"),
          18.0),
    Theme("Grocery",
          ("Coffee Beans", "Green Tea", "Olive Oil", "Pasta", "Dark Chocolate", "Honey", "Granola",
           "Spice Mix|Spice Mixes"),
          ("Organic", "Fair-Trade", "Gluten-Free", "Artisan", "Roasted"),
          12.0),
    Theme("Garden & Tools",
          ("Drill", "Screwdriver Set", "Lawn Mower", "Garden Hose", "Pruning Shears", "Tool Box|Tool Boxes",
           "Ladder", "Planter"),
          ("Cordless", "Heavy-Duty", "Telescopic", "Compact", "Professional"),
          80.0),
    Theme("Pet Supplies",
          ("Dog Bed", "Cat Tree", "Leash|Leashes", "Pet Food", "Aquarium", "Bird Cage", "Chew Toy",
           "Litter Box|Litter Boxes"),
          ("Orthopedic", "Automatic", "Durable", "Natural", "Washable"),
          35.0),
    Theme("Automotive",
          ("Car Charger", "Dash Cam", "Seat Cover", "Floor Mat", "Tire Inflator", "Jump Starter",
           "Car Vacuum", "Phone Mount"),
          ("Universal", "All-Weather", "Portable", "Magnetic", "Heavy-Duty"),
          45.0),
    Theme("Health",
          ("Multivitamin", "Blood Pressure Monitor", "Thermometer", "First Aid Kit", "Massage Gun",
           "Protein Powder", "Heating Pad"),
          ("Digital", "Daily", "Sugar-Free", "Rechargeable", "Clinical"),
          30.0),
)

MODEL_SUFFIXES: tuple[str, ...] = ("", "", "", " Pro", " Mini", " Max", " Plus", " Lite", " 2", " X")

FEATURES: tuple[str, ...] = (
    "Backed by a two-year guarantee",
    "Ships in recyclable packaging",
    "Quality checked before shipping",
    "Designed for everyday use",
    "A customer favourite for gifting",
    "Sourced from trusted suppliers",
    "Made from responsibly sourced materials",
    "Ships within one business day",
    "Free returns within 30 days",
    "Part of our best-selling range",
    "Rated highly by verified buyers",
    "Carefully packed to arrive intact",
    "Great value for the quality",
    "Loved by professionals and beginners alike",
    "Satisfaction guaranteed",
    "Exclusive to our store",
)
"""Selling points that fit any product (descriptions pick two)."""
