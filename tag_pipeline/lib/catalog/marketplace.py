"""A generated export in the shapes real marketplace exports come in, for the "Adding your
catalog" walk-through and its tests.

``write_marketplace_export`` writes, under a folder:

- ``export.csv``: the main export, comma-separated with no header line; category trees as
  JSON arrays of ``" >> "`` paths of uneven depth that end in the product's name;
  specifications as ``{"product_specification"=>[{"key"=>..., "value"=>...}, ...]}`` (Ruby's
  hash syntax, with a key-less first entry and keys spelled several ways: ``Ideal For``,
  ``ideal for``); time stamps like ``2016-03-25 22:59:23 +0000``;
- ``export_more.tsv.gz``: more products, tab-separated and gzip-compressed, with their
  specifications in JSON;
- ``marketplace.yaml``: the profile that reads both with no preprocessing.

Every value is drawn from a seeded generator, so the same arguments give the same files. The
text says enough about each tag (with noise: a share of titles leave the colour or the
fabric out) that a model has something to learn and something to get wrong.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ["uniq_id", "crawl_timestamp", "product_url", "product_name",
           "product_category_tree", "retail_price", "description", "brand",
           "product_specifications"]

# (path above the leaf, article word, genders, fabrics)
_ARTICLES = [
    (["Clothing", "Women's Clothing", "Western Wear", "Shorts"], "Shorts", ["Women"],
     ["Cotton", "Lycra", "Polyester"]),
    (["Clothing", "Women's Clothing", "Western Wear", "Tops"], "Top", ["Women"],
     ["Cotton", "Rayon", "Georgette"]),
    (["Clothing", "Women's Clothing", "Ethnic Wear", "Kurtas"], "Kurta", ["Women"],
     ["Cotton", "Silk", "Rayon"]),
    (["Clothing", "Men's Clothing", "Shirts"], "Shirt", ["Men"], ["Cotton", "Linen"]),
    (["Clothing", "Men's Clothing", "T-Shirts"], "T-Shirt", ["Men"], ["Cotton", "Polyester"]),
    (["Clothing", "Kids' Clothing", "Dresses"], "Dress", ["Girls"], ["Cotton", "Net"]),
    (["Footwear", "Women's Footwear", "Sandals"], "Sandals", ["Women"], ["Synthetic",
                                                                         "Leather"]),
    (["Footwear", "Men's Footwear", "Sports Shoes"], "Running Shoes", ["Men"], ["Mesh",
                                                                                "Synthetic"]),
    (["Watches"], "Analog Watch", ["Men", "Women"], ["Leather", "Steel"]),
    (["Jewellery", "Necklaces & Chains"], "Necklace", ["Women"], ["Alloy", "Silver"]),
    (["Bags, Wallets & Belts", "Wallets"], "Wallet", ["Men", "Women"], ["Leather"]),
]
_BRANDS = ["Alisha", "Roadster", "Bata", "Titan", "Fastrack", "Sringaar", "Libas", "HRX",
           "Campus", "Lavie", "Peter England", "Biba"]
_COLOURS = ["Black", "White", "Blue", "Red", "Green", "Pink", "Grey", "Yellow", "Brown"]
_PATTERNS = ["Solid", "Printed", "Striped", "Checked", "Embroidered"]
_IDEAL_FOR_SPELLINGS = ["Ideal For", "ideal for", "Ideal  For", "IDEAL FOR"]


@dataclass(frozen=True)
class MarketplaceExport:
    folder: Path
    profile: Path
    files: tuple[Path, ...]
    products: int


PROFILE = """\
# A marketplace export read with no preprocessing (see docs/operators.md, "Adding your catalog").
name: marketplace
root: "."                      # the folder of this file
source:
  files: ["export.csv", "export_more.tsv.gz"]   # .tsv is tab-separated, .gz read through gzip
  header: false                # the files have no header line: name the columns in order
  column_names: [uniq_id, crawl_timestamp, product_url, product_name, product_category_tree,
                 retail_price, description, brand, product_specifications]
columns:
  id: uniq_id
  title: product_name
  description: description
  price: retail_price
  updated_at: crawl_timestamp  # "2016-03-25 22:59:23 +0000" is read as UTC
features:
  - column: brand
tags:
  - name: category
    column: product_category_tree
    type: category
    shape: path
    separator: " >> "
    level_names: [category_l1, category_l2, category_l3]
    max_depth: 3                     # the deeper levels are too fine to learn
    max_single_product_share: 0.5    # drops the product-name leaf
  - name: spec
    column: product_specifications
    type: attribute
    shape: attributes                # {"product_specification"=>[{"key"=>..,"value"=>..}]}
    keys: [Fabric, Ideal For, Pattern, Color]
    key_synonyms: {Ideal For: gender}
    value_separator: ","             # "Women, Girls" is two values
    values: {girls: Women}           # map values (compared without case)
training: {epochs: 12, patience: 2, batch_size: 128, learning_rate: 0.003, seq_len: 32}
"""


def _product(rng: random.Random, i: int, json_specs: bool) -> list[str]:
    path, article, genders, fabrics = rng.choice(_ARTICLES)
    brand, colour = rng.choice(_BRANDS), rng.choice(_COLOURS)
    pattern, fabric, gender = rng.choice(_PATTERNS), rng.choice(fabrics), rng.choice(genders)
    owner = f"{gender}'" if gender.endswith("s") else f"{gender}'s"
    words = [brand, pattern, owner if rng.random() < 0.8 else "", article]
    if rng.random() < 0.85:
        words.insert(2, colour)
    name = " ".join(w for w in words if w) + f" {rng.randint(100, 999)}"
    description = (f"Buy {name} for Rs. {rng.randint(199, 4999)} online. "
                   + (f"Made of {fabric}. " if rng.random() < 0.7 else "")
                   + ("Genuine products, free shipping." if rng.random() < 0.5 else ""))
    ideal = f"{gender}, Girls" if gender == "Women" and rng.random() < 0.3 else gender
    pairs = [("Fabric", fabric), (rng.choice(_IDEAL_FOR_SPELLINGS), ideal),
             ("Pattern", pattern), ("Color", colour)]
    if json_specs:
        spec = json.dumps({"product_specification": [{"key": k, "value": v} for k, v in pairs]})
    else:
        items = ['{"value"=>"Ships in 2 days"}'] + [
            f'{{"key"=>"{k}", "value"=>"{v}"}}' for k, v in pairs]
        spec = '{"product_specification"=>[' + ", ".join(items) + "]}"
    tree = json.dumps([" >> ".join([*path, name])])
    stamp = (f"2016-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
             f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} +0000")
    return [f"{i:08x}{rng.getrandbits(64):016x}", stamp,
            f"http://www.example.com/p/{i}", name, tree, str(rng.randint(199, 4999)),
            description, brand, spec]


def write_marketplace_export(folder: Path, products: int = 20_000, more: int = 1_000,
                             seed: int = 7) -> MarketplaceExport:
    """Write the export files and their profile under ``folder`` (see the module doc)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    main = folder / "export.csv"
    with main.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        for i in range(products):
            writer.writerow(_product(rng, i, json_specs=False))
    extra = folder / "export_more.tsv.gz"
    with gzip.open(extra, "wt", encoding="utf-8", newline="") as handle:
        for i in range(products, products + more):
            handle.write("\t".join(_product(rng, i, json_specs=True)) + "\n")
    profile = folder / "marketplace.yaml"
    profile.write_text(PROFILE, encoding="utf-8")
    return MarketplaceExport(folder=folder, profile=profile, files=(main, extra),
                             products=products + more)
