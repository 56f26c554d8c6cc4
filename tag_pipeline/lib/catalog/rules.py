"""The profile's tag rules as tables, so the SQL label model can apply them generically."""

from __future__ import annotations

import re

import polars as pl

from tag_pipeline.lib.catalog.profile import CatalogProfile

_HAN_CHAR = re.compile("[\u3400-\u9fff\uf900-\ufaff]")
_NOT_LATIN = re.compile("[^a-z0-9]+")

LABEL_RULES_SCHEMA = {
    "field": pl.String,
    "tag_type": pl.String,
    "shape": pl.String,
    "separator": pl.String,
    "pair_separator": pl.String,
    "kv_separator": pl.String,
    "keys": pl.List(pl.String),
    "level_names": pl.List(pl.String),
    "max_depth": pl.Int64,
    "max_single_product_share": pl.Float64,
    "value_separator": pl.String,
    "synonym_from": pl.List(pl.String),
    "synonym_to": pl.List(pl.String),
    "value_from": pl.List(pl.String),
    "value_to": pl.List(pl.String),
}


def label_rules(profile: CatalogProfile) -> pl.DataFrame:
    """One row per column-based tag rule of the profile (lexicon rules excluded)."""
    rows = [
        {
            "field": spec.field_key,
            "tag_type": spec.tag_type,
            "shape": spec.shape,
            "separator": spec.separator,
            "pair_separator": spec.pair_separator,
            "kv_separator": spec.kv_separator,
            "keys": list(spec.keys),
            "level_names": list(spec.level_names),
            "max_depth": spec.max_depth,
            "max_single_product_share": spec.max_single_product_share,
            "value_separator": spec.value_separator,
            "synonym_from": list(spec.key_synonyms),
            "synonym_to": list(spec.key_synonyms.values()),
            # a plain column's value map is applied as the file is loaded
            "value_from": list(spec.value_map) if spec.shape == "attributes" else [],
            "value_to": list(spec.value_map.values()) if spec.shape == "attributes" else [],
        }
        for spec in profile.tags
        if spec.shape != "lexicon"
    ]
    return pl.DataFrame(rows, schema=LABEL_RULES_SCHEMA)


def term_needle(term: str) -> tuple[str, str]:
    """A lexicon term as (script, needle) for a substring test in SQL.

    A Chinese term (any Han character) is matched anywhere in the lower-cased text, since
    Chinese has no spaces between words. A Latin term is folded like the SQL macro
    ``latin_match_text`` (lower case, other characters to single spaces, padded), so it
    matches whole words only: ``solid`` matches ``Solid纯色`` but not ``Solidarity``.
    """
    lowered = term.strip().lower()
    if _HAN_CHAR.search(lowered):
        return "han", lowered
    return "latin", " " + " ".join(_NOT_LATIN.sub(" ", lowered).split()) + " "


def style_lexicon(profile: CatalogProfile) -> pl.DataFrame:
    """One row per (tag, term) of the profile's lexicon rules, with its match needle."""
    rows = [
        {"tag": tag, "tag_type": spec.tag_type, "facet": spec.name, "term": term,
         "script": term_needle(term)[0], "needle": term_needle(term)[1]}
        for spec in profile.tags
        if spec.shape == "lexicon"
        for tag, terms in spec.lexicon.items()
        for term in terms
    ]
    schema = {"tag": pl.String, "tag_type": pl.String, "facet": pl.String, "term": pl.String,
              "script": pl.String, "needle": pl.String}
    return pl.DataFrame(rows, schema=schema)
