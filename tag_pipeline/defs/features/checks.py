"""GX checks on the feature assets."""

from tag_pipeline.defs.expectations import gx_asset_check

features_checks = [
    gx_asset_check("product_features", blocking=True,
                   description="Each product once, in one known split, with a title."),
]
