"""The profile's tag rules as tables, so the SQL label model can apply them generically."""

from __future__ import annotations

import re

import polars as pl

from tag_pipeline.lib.catalog.profile import CatalogProfile

_HAS_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

LABEL_RULES_SCHEMA = {
    "field": pl.String,
    "tag_type": pl.String,
    "shape": pl.String,
    "separator": pl.String,
    "pair_separator": pl.String,
    "kv_separator": pl.String,
    "keys": pl.List(pl.String),
    "level_names": pl.List(pl.String),
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
        }
        for spec in profile.tags
        if spec.shape != "lexicon"
    ]
    return pl.DataFrame(rows, schema=LABEL_RULES_SCHEMA)


def term_pattern(term: str) -> str:
    """A case-insensitive RE2 pattern for a lexicon term.

    Latin terms must stand as whole words (``Solid`` does not match ``Solidarity``); Chinese
    has no word boundaries, so a Chinese term matches anywhere.
    """
    escaped = re.escape(term.strip())
    escaped = escaped.replace(r"\ ", r"\s+")
    if _HAS_CJK.search(term):
        return f"(?i){escaped}"
    return rf"(?i)\b{escaped}\b"


def style_lexicon(profile: CatalogProfile) -> pl.DataFrame:
    """One row per (tag, term) of the profile's lexicon rules, with its match pattern."""
    rows = [
        {"tag": tag, "tag_type": spec.tag_type, "facet": spec.name, "term": term,
         "pattern": term_pattern(term)}
        for spec in profile.tags
        if spec.shape == "lexicon"
        for tag, terms in spec.lexicon.items()
        for term in terms
    ]
    schema = {"tag": pl.String, "tag_type": pl.String, "facet": pl.String, "term": pl.String,
              "pattern": pl.String}
    return pl.DataFrame(rows, schema=schema)
