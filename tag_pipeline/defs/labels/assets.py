"""Labels: the profile's tag rules as tables, and the SQL models of dbt_like_sql/labels."""


from collections.abc import Iterator

import dagster as dg
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.policies import WAREHOUSE_POOL
from tag_pipeline.defs.resources import CatalogResource
from tag_pipeline.defs.retries import retry_only_transient
from tag_pipeline.defs.sql_models import sql_model_assets
from tag_pipeline.lib.catalog.rules import label_rules, style_lexicon
from tag_pipeline.lib.warehouse import markdown_table, replace_table

labels_sql_assets = sql_model_assets(("labels",))


@dg.multi_asset(
    specs=[
        dg.AssetSpec("label_rules", group_name="labels", kinds={"duckdb", "yaml"},
                     description="The profile's column tag rules (field, tag type, shape, "
                                 "separators, keys) read by the product_labels model."),
        dg.AssetSpec("style_lexicon", group_name="labels", kinds={"duckdb", "yaml"},
                     description="The profile's lexicon terms and match needles for tags "
                                 "mined from the text."),
    ],
    pool=WAREHOUSE_POOL,
)
@retry_only_transient
def catalog_profile_rules(
    duckdb: DuckDBResource, catalog: CatalogResource
) -> Iterator[dg.MaterializeResult]:
    """Write the catalog profile's tag rules and lexicon as tables."""
    profile = catalog.load_profile()
    rules, lexicon = label_rules(profile), style_lexicon(profile)
    with duckdb.get_connection() as con:
        replace_table(con, "label_rules", rules)
        replace_table(con, "style_lexicon", lexicon)
    meta = {"profile": profile.name, "profile_file": str(profile.source_path)}
    yield dg.MaterializeResult(
        asset_key="label_rules",
        metadata={**meta, "dagster/row_count": rules.height,
                  "preview": dg.MetadataValue.md(markdown_table(rules))},
    )
    yield dg.MaterializeResult(
        asset_key="style_lexicon",
        metadata={**meta, "dagster/row_count": lexicon.height,
                  "preview": dg.MetadataValue.md(markdown_table(lexicon.head(10)))},
    )
