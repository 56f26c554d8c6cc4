"""Features: the hash split, the label space and the rows the tagger trains on."""

import json

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.policies import WAREHOUSE_POOL
from tag_pipeline.defs.resources import CatalogResource
from tag_pipeline.defs.retries import retry_only_transient
from tag_pipeline.lib.models.catalog_features import columns_to_json
from tag_pipeline.lib.models.training import build_features
from tag_pipeline.lib.warehouse import markdown_table, read_table, replace_table, table_exists


class ProductFeaturesConfig(dg.Config):
    """How products are split and which tags are frequent enough to model."""

    min_support: int = 3
    split_salt: str = "tag_pipeline-v1"


@dg.asset(group_name="features", deps=["cleaned_products", "product_labels"],
          kinds={"duckdb", "python"},
    pool=WAREHOUSE_POOL,
)
@retry_only_transient
def product_features(context: dg.AssetExecutionContext, config: ProductFeaturesConfig,
                     duckdb: DuckDBResource, catalog: CatalogResource) -> dg.MaterializeResult:
    """Products with their train/val/test split, feature words and the label space decided
    on train."""
    feature_columns = catalog.load_profile().features
    with duckdb.get_connection() as con:
        products = read_table(con, "cleaned_products",
                              ["product_id", "title", "description", "image_path",
                               "tag_fields"])
        labels = read_table(con, "product_labels",
                            ["product_id", "tag", "tag_type", "facet", "level", "parent"])
        if table_exists(con, "raw_feedback"):
            # Shoppers' feedback teaches the next model: adds and accepts become labels,
            # rejected labels are dropped (an absent tag is a negative).
            from tag_pipeline.lib.tags.feedback import apply_to_labels, feedback_label_adjustments

            adjustments = feedback_label_adjustments(con)
            labels = apply_to_labels(labels, adjustments)
            context.log.info(f"feedback label adjustments: {adjustments.height}")
        features = build_features(products, labels, config.min_support, config.split_salt,
                                  feature_columns=feature_columns)
        replace_table(con, "product_features", features.products)
        replace_table(con, "label_space", pl.DataFrame({
            "space_json": [features.space.to_json()],
            "features_json": [json.dumps(columns_to_json(feature_columns))]}))
    heads = pl.DataFrame([{"head": h.name, "kind": h.kind, "tags": h.size,
                           "labelled_train": h.n_labeled} for h in features.space.heads])
    rare = pl.DataFrame([{"tag": r.tag, "facet": r.facet, "support": r.support}
                         for r in features.space.rare_tags]) if features.space.rare_tags \
        else pl.DataFrame({"tag": []})
    context.log.info(f"{len(features.space.heads)} heads, "
                     f"{len(features.space.rare_tags)} rare tags reported")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": features.products.height,
        **features.counts(),
        "heads": len(features.space.heads),
        "rare_tags": len(features.space.rare_tags),
        "feature_columns": ", ".join(f.name for f in feature_columns) or "none",
        "taxonomy_paths": sum(len(t.paths) for t in getattr(features.space, "taxonomies", ())),
        "heads_table": dg.MetadataValue.md(markdown_table(heads)),
        "rare_tags_table": dg.MetadataValue.md(markdown_table(rare.head(30))),
    })
