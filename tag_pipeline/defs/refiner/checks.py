"""GX check on the refiner's ablation (written to the refiner_ablation table)."""

from tag_pipeline.defs.expectations import gx_asset_check
from tag_pipeline.lib.warehouse import read_table

refiner_checks = [
    gx_asset_check("tag_refiner", blocking=True, suite="refiner_ablation",
                   frame=lambda con: read_table(con, "refiner_ablation"),
                   name="tag_refiner_ablation_expectations",
                   description="The ablation has the tagger alone and the tagger + refiner, "
                               "with every rate in [0, 1]."),
]
