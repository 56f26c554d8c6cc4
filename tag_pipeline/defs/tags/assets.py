"""The tag tables search and recommendation teams read: product_tags (current, written
atomically), product_tag_history (append-only), the untagged list and the Parquet export; and
the review queue of catalog values the model contradicts (catalog_tag_disagreements)."""

from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.policies import WAREHOUSE_POOL
from tag_pipeline.defs.resources import SQL_ROOT, ExportResource, MlflowResource
from tag_pipeline.defs.retries import retry_only_transient
from tag_pipeline.defs.sql_models import sql_model_assets
from tag_pipeline.defs.table_metadata import column_schema
from tag_pipeline.lib.tags.disagreements import DEFAULT_MIN_MODEL_SCORE
from tag_pipeline.lib.warehouse import count_rows, counts_by, markdown_table, preview


class ProductTagsConfig(dg.Config):
    """How the catalog is tagged. Only new and changed products, and all products when the
    champion tagger or refiner changed, are scored unless ``full_retag`` is set. Explanations
    cost about one forward pass per word tried (``explanation_max_words``)."""

    full_retag: bool = False
    batch_size: int = 4096
    explain: bool = True
    explanation_words: int = 2
    explanation_max_words: int = 16
    use_refiner: bool = True
    include_catalog_tags: bool = True


@dg.multi_asset(
    group_name="tags",
    specs=[
        dg.AssetSpec("product_tags", kinds={"duckdb"},
                     deps=["cleaned_products", "product_labels", "tag_taxonomy", "model_tags",
                           "raw_feedback", "behaviour_tags"],
                     description="The current tags of every product, with type, score, "
                                 "source, explanation and the model versions that gave them."),
        dg.AssetSpec("model_tags", kinds={"duckdb", "tensorflow"},
                     deps=["cleaned_products", "tag_model_evaluation", "tag_refiner"],
                     description="The tagger's (and refiner's) latest tags of every product, "
                                 "with explanations, before catalog tags are merged in."),
        dg.AssetSpec("product_tag_history", kinds={"duckdb"},
                     description="Append-only record of every change to a product's tags."),
    ],
    pool=WAREHOUSE_POOL,
)
@retry_only_transient
def product_tags(context: dg.AssetExecutionContext, config: ProductTagsConfig,
                 duckdb: DuckDBResource, mlflow: MlflowResource):
    """Tag new and changed products with the champion tagger (and refiner, if it passed its
    gate), merge catalog, sales and feedback, and write product_tags and its history in one
    transaction."""
    from tag_pipeline.lib.models.registry_models import (
        champion_tagger_version,
        choose_refiner,
        load_refiner,
        load_tagger,
    )
    from tag_pipeline.lib.tags.tagging import refresh_product_tags, tag_catalog

    mlflow.activate()
    client = mlflow.client()
    tagger_version = champion_tagger_version(client, mlflow.registered_model_name)
    bundle = load_tagger(mlflow.registered_model_name, tagger_version)
    choice = choose_refiner(client, mlflow.refiner_model_name, tagger_version)
    refiner_version = choice.version if config.use_refiner else None
    refiner = load_refiner(mlflow.refiner_model_name, refiner_version) if refiner_version \
        else None
    reason = choice.reason if config.use_refiner else "refiner turned off (use_refiner=False)"
    context.log.info(f"tagging with tagger v{tagger_version}; refiner: "
                     f"{'v' + refiner_version if refiner_version else 'none'} ({reason})")
    last_logged = [0.0]

    def progress(done: int, total: int) -> None:
        if done == total or done / max(total, 1) - last_logged[0] >= 0.1:
            last_logged[0] = done / max(total, 1)
            context.log.info(f"tagged {done:,} of {total:,} products")

    with duckdb.get_connection() as con:
        stats = tag_catalog(con, bundle, refiner, tagger_version=tagger_version,
                            refiner_version=refiner_version, sql_root=SQL_ROOT,
                            full_retag=config.full_retag, batch_size=config.batch_size,
                            explain=config.explain, explanation_words=config.explanation_words,
                            explanation_max_words=config.explanation_max_words,
                            progress=progress)
        refresh = refresh_product_tags(con, SQL_ROOT,
                                       include_catalog_tags=config.include_catalog_tags,
                                       run_id=context.run_id, at=datetime.now(UTC),
                                       full=config.full_retag)
        result = refresh.write
        model_rows = count_rows(con, "model_tags")
        by_source = counts_by(con, "product_tags", "source")
        by_type = counts_by(con, "product_tags", "tag_type")
        tags_preview = preview(con, "product_tags", limit=8)
        history_preview = preview(con, "product_tag_history", limit=8)
        schemas = {t: column_schema(con, t)
                   for t in ("model_tags", "product_tags", "product_tag_history")}
    context.log.info(f"scored {stats.products:,} of {stats.catalog_products:,} products "
                     f"in {stats.seconds:.1f} s")
    context.log.info(f"product_tags: {result.rows:,} tags on {result.products:,} products; "
                     f"{result.added:,} added, {result.removed:,} removed, "
                     f"{result.changed:,} changed, {result.unchanged:,} unchanged")
    yield dg.MaterializeResult(asset_key="model_tags", metadata={
        "dagster/row_count": model_rows,
        "dagster/column_schema": schemas["model_tags"],
        "products_scored": stats.products,
        "catalog_products": stats.catalog_products,
        "full_retag": config.full_retag,
        "new_model_tags": stats.model_tags,
        "new_refiner_tags": stats.refiner_tags,
        "new_explained_tags": stats.explained_tags,
        "scoring_seconds": round(stats.seconds, 2),
        "products_per_second": round(stats.products_per_second, 1),
        "tagger_version": tagger_version,
        "refiner_version": refiner_version or "",
    })
    tagger_url = mlflow.model_version_url(mlflow.registered_model_name, tagger_version)
    yield dg.MaterializeResult(asset_key="product_tags", metadata={
        "dagster/row_count": result.rows,
        "dagster/column_schema": schemas["product_tags"],
        "products_tagged": result.products,
        "tagger_version": tagger_version,
        **({"tagger_version_url": dg.MetadataValue.url(tagger_url)} if tagger_url else {}),
        "refiner_version": refiner_version or "",
        "refiner_applied": refiner is not None,
        "refiner_decision": reason,
        "write_seconds": round(result.seconds, 2),
        # Products whose candidate tags were rebuilt: those whose inputs changed, or all.
        "products_rebuilt": (refresh.rebuilt_products if refresh.rebuilt_products is not None
                             else result.products),
        "incremental_write": refresh.rebuilt_products is not None,
        **{f"source.{k}": v for k, v in by_source.items()},
        **{f"tag_type.{k}": v for k, v in by_type.items()},
        "preview": dg.MetadataValue.md(tags_preview),
    })
    yield dg.MaterializeResult(asset_key="product_tag_history", metadata={
        "rows_appended": result.history_rows,
        "dagster/column_schema": schemas["product_tag_history"],
        "added": result.added,
        "removed": result.removed,
        "changed": result.changed,
        "unchanged": result.unchanged,
        "preview": dg.MetadataValue.md(history_preview),
    })


@dg.asset(group_name="tags", deps=["product_tags"], kinds={"parquet", "duckdb"},
          pool=WAREHOUSE_POOL)
@retry_only_transient
def product_tags_export(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                        exports: ExportResource) -> dg.MaterializeResult:
    """product_tags as Parquet, partitioned by tag type, swapped in whole for readers."""
    import polars as pl

    from tag_pipeline.lib.tags.store import export_product_tags

    directory = exports.path("product_tags")
    with duckdb.get_connection() as con:
        rows = export_product_tags(con, directory)
    context.log.info(f"exported {sum(rows.values()):,} tags to {directory}")
    table = pl.DataFrame({"tag_type": list(rows), "rows": list(rows.values())})
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(directory)),
        "dagster/row_count": sum(rows.values()),
        **{f"rows.{k}": v for k, v in rows.items()},
        "partitions": dg.MetadataValue.md(markdown_table(table)),
    })


class DisagreementsConfig(dg.Config):
    """Which contradictions are listed: those where the model gives its own value a score of
    at least ``min_model_score`` (a low score is a guess rather than evidence against the
    catalog)."""

    min_model_score: float = DEFAULT_MIN_MODEL_SCORE


@dg.asset(group_name="tags", kinds={"duckdb"},
          deps=["product_tags", "model_tags", "raw_feedback", "cleaned_products",
                "product_features"],
          pool=WAREHOUSE_POOL)
@retry_only_transient
def catalog_tag_disagreements(context: dg.AssetExecutionContext, config: DisagreementsConfig,
                              duckdb: DuckDBResource) -> dg.MaterializeResult:
    """Suspected catalog errors: per product and single-valued facet, the catalog value
    product_tags serves and the champion model's other value, with its score and explanation,
    the most confident first. Feedback on either value takes a row out of the queue."""
    from tag_pipeline.lib.tags.disagreements import DISAGREEMENTS_TABLE, write_disagreements

    with duckdb.get_connection() as con:
        summary = write_disagreements(con, SQL_ROOT, min_model_score=config.min_model_score)
        top = preview(con, DISAGREEMENTS_TABLE, limit=10)
        schema = column_schema(con, DISAGREEMENTS_TABLE)
    context.log.info(f"{summary.rows:,} catalog values contradicted by the model with a score "
                     f"of at least {config.min_model_score}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": summary.rows,
        "dagster/column_schema": schema,
        "min_model_score": config.min_model_score,
        **{f"facet.{k}": v for k, v in summary.by_facet.items()},
        "preview": dg.MetadataValue.md(top),
    })


tags_sql_assets = sql_model_assets(("tags",))
