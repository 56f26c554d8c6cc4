"""GX checks on the label assets."""

from tag_pipeline.defs.expectations import gx_asset_check
from tag_pipeline.lib.check_frames import labels_with_taxonomy

labels_checks = [
    gx_asset_check("label_rules", blocking=True,
                   description="Tag rules have a field, a known tag type and shape."),
    gx_asset_check("style_lexicon", blocking=True,
                   description="Lexicon terms have a tag, a known tag type and a needle."),
    gx_asset_check("product_labels", blocking=True,
                   description="Labels complete, tag types and sources in their sets, no label "
                               "twice."),
    gx_asset_check("tag_taxonomy", blocking=True,
                   description="Each (tag type, facet, tag) once, with at least one product."),
    gx_asset_check("tag_taxonomy", blocking=True, frame=labels_with_taxonomy,
                   suite="taxonomy_coverage", name="tag_taxonomy_covers_labels",
                   description="Every label's tag is present in the taxonomy."),
]
