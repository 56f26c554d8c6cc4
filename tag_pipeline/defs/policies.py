"""Project-wide asset settings, applied by every asset definition."""

# Who answers for the pipeline's tables in the Dagster UI.
OWNERS = ["team:data-platform"]
