"""The catalog chain run outside Dagster, in dependency order (for benchmarks and tests).

Dagster runs the same steps as separate assets; this runs them back to back on one
connection so a benchmark measures the work, not the orchestration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from tag_pipeline.lib.catalog.ingest import IngestReport, ingest_catalog
from tag_pipeline.lib.catalog.profile import CatalogProfile, model_vars
from tag_pipeline.lib.catalog.rules import label_rules, style_lexicon
from tag_pipeline.lib.image_store import ImageCheckStats, check_catalog_images
from tag_pipeline.lib.sql import discover_models, run_model, topological_order
from tag_pipeline.lib.warehouse import replace_table

# The SQL folders of the catalog chain (the tags folder needs the tagger's tables).
CATALOG_FOLDERS = ("staging", "cleaned", "labels")
IMAGE_CHECKS_EMPTY = """
    CREATE OR REPLACE TABLE image_checks (image_ref VARCHAR, image_path VARCHAR,
        status VARCHAR, width INTEGER, height INTEGER, content_hash VARCHAR, detail VARCHAR,
        checked_at TIMESTAMP)
"""


@dataclass
class ChainResult:
    """Row counts per table and seconds per step."""

    ingest: IngestReport
    images: ImageCheckStats | None = None
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_catalog_chain(con: duckdb.DuckDBPyConnection, profile: CatalogProfile, sql_root: Path,
                      with_labels: bool = True,
                      log: Callable[[str], None] | None = None,
                      check_images: bool = True) -> ChainResult:
    """Ingest new files, check images and build every SQL model, in dependency order.

    ``check_images=False`` reads no image file: ``image_checks`` is left empty, so every
    product's image counts as missing (for a quick look at a profile's text and tags).
    """

    def timed(step: str, fn: Callable[[], object]) -> object:
        started = time.perf_counter()
        out = fn()
        result.seconds[step] = time.perf_counter() - started
        if log:
            log(f"{step}: {result.seconds[step]:.2f} s")
        return out

    result = ChainResult(ingest=IngestReport())
    result.ingest = timed("raw_products", lambda: ingest_catalog(
        con, profile, datetime.now(UTC).replace(tzinfo=None)))
    if with_labels:
        timed("label_rules", lambda: (replace_table(con, "label_rules", label_rules(profile)),
                                      replace_table(con, "style_lexicon", style_lexicon(profile))))
    variables = model_vars(profile)
    folders = CATALOG_FOLDERS if with_labels else CATALOG_FOLDERS[:-1]
    models = topological_order([m for m in discover_models(sql_root)
                                if m.folder.split("/")[0] in folders])
    for model in models:
        if "image_checks" in model.refs and "image_checks" not in result.seconds:
            if check_images:
                result.images = timed("image_checks", lambda: check_catalog_images(
                    con, profile.root, profile.image_root, profile.cleaning.min_image_px,
                    datetime.now(UTC).replace(tzinfo=None)))
            else:
                timed("image_checks", lambda: con.execute(IMAGE_CHECKS_EMPTY))
        result.rows[model.name] = timed(
            model.name, lambda m=model: run_model(con, m, sql_root, variables))
    return result
