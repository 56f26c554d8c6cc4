"""Image checks kept in the warehouse, with their hash and decode caches."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from tag_pipeline.lib.images import FileStamp, ImageVerdict, verify_images
from tag_pipeline.lib.sql import transaction

_CACHE_DDL = (
    """
    CREATE TABLE IF NOT EXISTS image_file_hashes (
        path VARCHAR, size_bytes BIGINT, mtime_ns BIGINT, content_hash VARCHAR,
        PRIMARY KEY (path, size_bytes, mtime_ns)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS image_verdicts (
        content_hash VARCHAR PRIMARY KEY, status VARCHAR, width INTEGER, height INTEGER,
        detail VARCHAR
    )
    """,
)


@dataclass(frozen=True)
class ImageCheckStats:
    """Work done by one pass: references checked, files hashed, images decoded, seconds."""

    refs: int
    hashed: int
    decoded: int
    seconds: float


def check_catalog_images(con: duckdb.DuckDBPyConnection, base_dir: Path, image_root: Path,
                         min_px: int, checked_at: datetime, workers: int = 2) -> ImageCheckStats:
    """Check the images of the current products and replace ``image_checks`` atomically.

    Reads the distinct image references of the cleaned rows of ``stg_products``; files and
    contents seen before (same path, size and mtime; same content hash) are not hashed or
    decoded again.
    """
    for statement in _CACHE_DDL:
        con.execute(statement)
    refs = [r[0] for r in con.execute(
        "SELECT DISTINCT image_ref FROM stg_products "
        "WHERE row_status = 'cleaned' AND image_ref IS NOT NULL ORDER BY 1"
    ).fetchall()]
    hash_cache = {
        (path, FileStamp(size, mtime)): digest
        for path, size, mtime, digest in con.execute(
            "SELECT path, size_bytes, mtime_ns, content_hash FROM image_file_hashes"
        ).fetchall()
    }
    verdict_cache = {
        digest: ImageVerdict(status, width, height, detail)
        for digest, status, width, height, detail in con.execute(
            "SELECT content_hash, status, width, height, detail FROM image_verdicts"
        ).fetchall()
    }
    known_hashes, known_verdicts = set(hash_cache), set(verdict_cache)
    started = time.perf_counter()
    checks, stats = verify_images(refs, base_dir, image_root, min_px, hash_cache,
                                  verdict_cache, workers)
    seconds = time.perf_counter() - started

    frame = pl.DataFrame(
        {
            "image_ref": [c.image_ref for c in checks],
            "image_path": [c.image_path for c in checks],
            "status": [c.status for c in checks],
            "width": [c.width for c in checks],
            "height": [c.height for c in checks],
            "content_hash": [c.content_hash for c in checks],
            "detail": [c.detail for c in checks],
        },
        schema={"image_ref": pl.String, "image_path": pl.String, "status": pl.String,
                "width": pl.Int32, "height": pl.Int32, "content_hash": pl.String,
                "detail": pl.String},
    ).with_columns(checked_at=pl.lit(checked_at))
    new_hashes = pl.DataFrame(
        [{"path": k[0], "size_bytes": k[1].size, "mtime_ns": k[1].mtime_ns, "content_hash": v}
         for k, v in hash_cache.items() if k not in known_hashes],
        schema={"path": pl.String, "size_bytes": pl.Int64, "mtime_ns": pl.Int64,
                "content_hash": pl.String},
    )
    new_verdicts = pl.DataFrame(
        [{"content_hash": k, "status": v.status, "width": v.width, "height": v.height,
          "detail": v.detail} for k, v in verdict_cache.items() if k not in known_verdicts],
        schema={"content_hash": pl.String, "status": pl.String, "width": pl.Int32,
                "height": pl.Int32, "detail": pl.String},
    )
    con.register("_image_checks_frame", frame)
    con.register("_new_hashes", new_hashes)
    con.register("_new_verdicts", new_verdicts)
    try:
        with transaction(con, "writing image_checks"):
            con.execute("CREATE OR REPLACE TABLE image_checks AS SELECT * FROM _image_checks_frame")
            con.execute("INSERT OR IGNORE INTO image_file_hashes SELECT * FROM _new_hashes")
            con.execute("INSERT OR IGNORE INTO image_verdicts SELECT * FROM _new_verdicts")
    finally:
        for name in ("_image_checks_frame", "_new_hashes", "_new_verdicts"):
            con.unregister(name)
    return ImageCheckStats(stats.refs, stats.hashed, stats.decoded, seconds)
