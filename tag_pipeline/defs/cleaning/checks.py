"""GX checks on the cleaning assets; blocking ones stop bad rows flowing downstream."""

from tag_pipeline.defs.expectations import gx_asset_check
from tag_pipeline.lib.check_frames import image_checks_frame, stg_products_frame

cleaning_checks = [
    gx_asset_check("stg_products", blocking=True, frame=stg_products_frame,
                   description="Every raw row has exactly one fate and rejected rows a reason."),
    gx_asset_check("image_checks", blocking=True, frame=image_checks_frame,
                   description="Every image reference has a known status; usable ones a size."),
    gx_asset_check("cleaned_products", blocking=True,
                   description="Ids present and unique, titles non-empty, language and image "
                               "status in their sets, prices non-negative."),
    gx_asset_check("rejected_products", blocking=True,
                   description="Every rejected row has its file, line, stage and a known reason."),
    gx_asset_check("row_accounting", blocking=True,
                   description="Every input row accounted for: raw = cleaned + rejected + "
                               "superseded, per loaded file."),
]
