"""Tagging the cleaned catalog with a tagger (and optionally its refiner), batch by batch.

Products are streamed from ``cleaned_products`` in Arrow record batches; each batch is tagged,
explained and appended to a scratch table, so memory holds one batch of products and the
tags, never the whole catalog as Python objects. When every batch is done the scratch rows
replace those products' rows of ``model_tags`` (the model's latest output, kept so that later steps
such as feedback can rebuild product_tags without scoring again) in one transaction.
``candidate_view`` then merges those model tags with the catalog's own tags and sales
behaviour tags, and applies the feedback in force (``dbt_like_sql/writes/tag_candidates.sql``),
into the candidate set that ``store.write_product_tags`` writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from tag_pipeline.lib.sql import load_statement, quote_ident, transaction
from tag_pipeline.lib.tags.candidates import (
    DEFAULT_ACCEPT_FLOOR,
    MODEL_TAGS_SCHEMA,
    MODEL_TAGS_TABLE,
    candidate_view,
)
from tag_pipeline.lib.tags.store import TagWriteResult, write_product_tags

if TYPE_CHECKING:
    from tag_pipeline.lib.models.bundle import TaggerBundle
    from tag_pipeline.lib.models.refiner import Refiner

# Per product: the input hash and model versions its model tags came from.
MODEL_PRODUCTS_TABLE = "model_tag_products"
# Scratch tables of one pass. Regular tables, not TEMP ones: the second cursor that streams
# the products is another connection and cannot see the first one's temporary tables. They
# are replaced at the start of a pass and dropped at its end; readers use model_tags.
_STAGING_TABLE = "_model_tags_staging"
_TODO_TABLE = "_products_to_tag"

# (products done, products in all) after each batch
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TaggingStats:
    """What one tagging pass did."""

    products: int  # products tagged in this pass
    catalog_products: int  # cleaned products in all
    model_tags: int
    refiner_tags: int
    explained_tags: int
    seconds: float

    @property
    def products_per_second(self) -> float:
        """Throughput of the pass (tagging and explanations)."""
        return self.products / self.seconds if self.seconds > 0 else 0.0


def _ensure_model_tables(con: duckdb.DuckDBPyConnection) -> None:
    columns = ", ".join(f"{quote_ident(c)} {t}" for c, t in MODEL_TAGS_SCHEMA.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {MODEL_TAGS_TABLE} ({columns})")
    con.execute(f"CREATE TABLE IF NOT EXISTS {MODEL_PRODUCTS_TABLE} (product_id VARCHAR, "
                "input_hash VARCHAR, tagger_version VARCHAR, refiner_version VARCHAR, "
                "tagged_at TIMESTAMP)")


def tag_products(bundle: TaggerBundle, products: pl.DataFrame, refiner: Refiner | None = None,
                 *, tagger_version: str, refiner_version: str | None = None,
                 explain: bool = True, explanation_words: int = 2,
                 explanation_max_words: int = 16) -> pl.DataFrame:
    """The ``model_tags`` rows of a batch of products: the refiner's tags when one is given,
    else the tagger's, with explanations (word occlusion) and the model versions.

    Args:
        products: product_id, title; optional description and image_path (null: no image).
    """
    from tag_pipeline.lib.models.serving import tag

    tags = tag(bundle, products, refiner, explain=explain, explanation_words=explanation_words,
               explanation_max_words=explanation_max_words)
    if not explain:
        tags = tags.with_columns(explanation=pl.lit(None, pl.Utf8))
    return tags.with_columns(
        tagger_version=pl.lit(tagger_version, pl.Utf8),
        refiner_version=pl.lit(refiner_version, pl.Utf8),
    ).select(list(MODEL_TAGS_SCHEMA))


def tag_catalog(con: duckdb.DuckDBPyConnection, bundle: TaggerBundle,
                refiner: Refiner | None = None, *, tagger_version: str,
                refiner_version: str | None = None, sql_root: Path,
                full_retag: bool = False, batch_size: int = 4096,
                explain: bool = True, explanation_words: int = 2,
                explanation_max_words: int = 16,
                progress: Progress | None = None) -> TaggingStats:
    """Tag the cleaned products that need it and update ``MODEL_TAGS_TABLE`` with their tags.

    Which products need it is ``dbt_like_sql/writes/products_to_tag.sql``: every product on a
    full retag, else the new ones, the changed ones and those tagged by another model version.
    Their old model tags, and those of products gone from the catalog, are replaced in one
    transaction at the end (a crash before leaves ``model_tags`` as it was).

    Args:
        con: The warehouse connection (the temporary tables live on it).
        bundle: The tagger.
        refiner: The refiner to apply, or None to tag with the tagger alone.
        tagger_version: Registry version of the tagger, stored on every tag.
        refiner_version: Registry version of the refiner (required with a refiner).
        sql_root: The ``dbt_like_sql`` folder.
        full_retag: Tag every product, changed or not.
        batch_size: Products per batch read from the warehouse.
        explain: Whether to add the words that support each tag (``explain.explain_tags``).
        explanation_words: Words kept per explanation.
        explanation_max_words: Words of a product tried by occlusion (title first); each
            costs about one forward pass.
        progress: Called after every batch with (products done, products to tag).
    """
    if refiner is not None and refiner_version is None:
        raise ValueError("tag_catalog: a refiner needs its refiner_version")
    if batch_size < 1:
        raise ValueError(f"tag_catalog: batch_size must be at least 1, got {batch_size}")
    started = time.perf_counter()
    _ensure_model_tables(con)
    todo = load_statement(sql_root, "products_to_tag",
                          {"full_retag": int(full_retag), "tagger_version": tagger_version,
                           "refiner_version": refiner_version or ""},
                          {"cleaned_products": "cleaned_products",
                           "model_tag_products": MODEL_PRODUCTS_TABLE})
    con.execute(f"CREATE OR REPLACE TABLE {_TODO_TABLE} AS {todo}")
    columns = ", ".join(f"{quote_ident(c)} {t}" for c, t in MODEL_TAGS_SCHEMA.items())
    con.execute(f"CREATE OR REPLACE TABLE {_STAGING_TABLE} ({columns})")
    total = con.execute(f"SELECT count(*) FROM {_TODO_TABLE}").fetchone()[0]
    catalog = con.execute("SELECT count(*) FROM cleaned_products").fetchone()[0]
    reader = con.cursor()  # a second cursor reads while the first one appends
    batches = reader.execute(
        f"SELECT product_id, title, description, image_path, tag_fields FROM {_TODO_TABLE} "
        "ORDER BY product_id").fetch_record_batch(batch_size)
    done = model_tags = refiner_tags = explained = 0
    for batch in batches:
        products = pl.from_arrow(batch)
        tags = tag_products(bundle, products, refiner, tagger_version=tagger_version,
                            refiner_version=refiner_version, explain=explain,
                            explanation_words=explanation_words,
                            explanation_max_words=explanation_max_words)
        con.register("_tag_batch", tags.to_arrow())
        try:
            con.execute(f"INSERT INTO {_STAGING_TABLE} SELECT * FROM _tag_batch")
        finally:
            con.unregister("_tag_batch")
        done += products.height
        model_tags += int((tags["source"] == "model").sum())
        refiner_tags += int((tags["source"] == "refiner").sum())
        explained += int(tags["explanation"].is_not_null().sum())
        if progress is not None:
            progress(done, total)
    reader.close()
    # Old tags of re-tagged products and of products no longer in the catalog go; new come.
    stale = (f"product_id IN (SELECT product_id FROM {_TODO_TABLE}) OR product_id NOT IN "
             "(SELECT product_id FROM cleaned_products)")
    with transaction(con):
        con.execute(f"DELETE FROM {MODEL_TAGS_TABLE} WHERE {stale}")
        con.execute(f"INSERT INTO {MODEL_TAGS_TABLE} SELECT * FROM {_STAGING_TABLE}")
        con.execute(f"DELETE FROM {MODEL_PRODUCTS_TABLE} WHERE {stale}")
        con.execute(f"INSERT INTO {MODEL_PRODUCTS_TABLE} SELECT product_id, input_hash, ?, ?, "
                    f"now()::TIMESTAMP FROM {_TODO_TABLE}", [tagger_version, refiner_version])
    con.execute(f"DROP TABLE {_STAGING_TABLE}")
    con.execute(f"DROP TABLE {_TODO_TABLE}")
    return TaggingStats(products=done, catalog_products=int(catalog), model_tags=model_tags,
                        refiner_tags=refiner_tags, explained_tags=explained,
                        seconds=time.perf_counter() - started)


@dataclass(frozen=True)
class TagRefresh:
    """What one ``refresh_product_tags`` wrote, and over how many products it rebuilt the
    candidates (None: every product)."""

    write: TagWriteResult
    rebuilt_products: int | None


def refresh_product_tags(con: duckdb.DuckDBPyConnection, sql_root: Path, *,
                         include_catalog_tags: bool, run_id: str, at: datetime,
                         full: bool = False) -> TagRefresh:
    """Rebuild the candidate tags of the products whose inputs changed since the last refresh
    and write them into ``product_tags`` (see ``incremental``); every product when ``full``,
    on the first refresh, or when the settings, the taxonomy or the candidate SQL changed.

    Args:
        con: The warehouse connection; it must not be inside a transaction.
        sql_root: The ``dbt_like_sql`` folder.
        include_catalog_tags: Whether the catalog's own tags are candidates.
        run_id: The run writing.
        at: When the write happens.
        full: Rebuild and write every product's candidates.
    """
    from tag_pipeline.lib.tags import incremental

    settings = (f"include_catalog_tags={int(include_catalog_tags)};"
                f"accept_floor={DEFAULT_ACCEPT_FLOOR!r}")
    scope = incremental.changed_scope(con, sql_root, settings)
    if full:
        scope = None
    view = candidate_view(con, sql_root, include_catalog_tags, scope=scope)
    write = write_product_tags(con, view, run_id=run_id, at=at, scope=scope)
    rebuilt = None if scope is None else int(
        con.execute(f"SELECT count(*) FROM {scope}").fetchone()[0])
    incremental.record_inputs(con, sql_root, settings)
    return TagRefresh(write=write, rebuilt_products=rebuilt)
