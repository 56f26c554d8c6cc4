"""Sales and feedback events: pseudonymised ingestion and the settings of the behaviour models.

The behaviour models (``dbt_like_sql/behaviour/``) read these vars; ``behaviour_vars`` gives
the defaults with the as-of time filled in.
"""

from __future__ import annotations

from datetime import datetime

from tag_pipeline.lib.events.ingest import (
    EventIngestError,
    EventIngestReport,
    UnknownProducts,
    ensure_event_tables,
    ingest_events,
    unknown_products,
)
from tag_pipeline.lib.events.pseudonym import (
    PseudonymKeyError,
    load_key,
    pseudonymise,
    register_pseudonym_function,
)

# Defaults of the behaviour models' vars (see dbt_like_sql/behaviour/behaviour_tags.sql).
BEHAVIOUR_DEFAULTS: dict[str, int | float] = {
    "behaviour_window_days": 28,
    "bestseller_top_share": 0.1,
    "bestseller_min_units": 10,
    "trending_min_growth": 1.5,
    "trending_min_units": 10,
    "season_peak_ratio": 2.0,
    "season_min_units": 10,
}


def behaviour_vars(as_of: datetime, **overrides: int | float) -> dict[str, int | float | str]:
    """The vars of the behaviour models: the defaults, ``overrides``, and the as-of time.

    Raises:
        ValueError: An override names no known var.
    """
    unknown = sorted(set(overrides) - set(BEHAVIOUR_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown behaviour var(s) {unknown}; known: {sorted(BEHAVIOUR_DEFAULTS)}")
    return {**BEHAVIOUR_DEFAULTS, **overrides,
            "behaviour_as_of": as_of.strftime("%Y-%m-%d %H:%M:%S.%f")}


__all__ = [
    "BEHAVIOUR_DEFAULTS",
    "EventIngestError",
    "EventIngestReport",
    "PseudonymKeyError",
    "UnknownProducts",
    "behaviour_vars",
    "ensure_event_tables",
    "ingest_events",
    "load_key",
    "pseudonymise",
    "register_pseudonym_function",
    "unknown_products",
]
