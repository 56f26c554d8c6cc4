"""GX checks on the ingest assets."""

from tag_pipeline.defs.expectations import gx_asset_check

ingest_checks = [
    gx_asset_check("raw_products", blocking=True,
                   description="Every raw row has its file, line and load; no row twice."),
    gx_asset_check("raw_product_rejects", blocking=False,
                   description="Every parse reject has its file, line and a known error type."),
    gx_asset_check("ingest_files", blocking=True,
                   description="Each loaded file once per content hash, with its row counts."),
]
