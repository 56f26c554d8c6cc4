"""GX checks on sales, feedback and the behaviour tags."""

from tag_pipeline.defs.expectations import gx_asset_check

events_checks = [
    gx_asset_check("raw_sales", blocking=True,
                   description="Order lines complete, quantities >= 1, prices >= 0, user ids "
                               "pseudonymised."),
    gx_asset_check("raw_feedback", blocking=True,
                   description="Feedback complete, actions known, user ids pseudonymised."),
    *(gx_asset_check(name, blocking=True, description=description) for name, description in (
        ("sales_by_product_period", "Units, lines and revenue per product and month >= 0."),
        ("sales_by_product_window", "Each product once with its window units."),
        ("sales_season_peaks", "Peaks in a valid month with positive units."),
        ("behaviour_tags", "Known type, scores in [0, 1], evidence, each tag once."),
    )),
]
