"""Project-wide asset settings."""

# Who answers for the pipeline's tables in the Dagster UI: applied to every asset by the root
# (tag_pipeline/definitions.py), not by each module.
OWNERS = ["team:data-platform"]

# The Dagster pool of every asset, check and op that opens the DuckDB warehouse. DuckDB takes one
# writing process per file, so the instance gives this pool one run at a time (see `tag-pipeline
# init`'s dagster.yaml); runs that touch only MLflow (promote, roll back) hold no slot.
WAREHOUSE_POOL = "warehouse"
