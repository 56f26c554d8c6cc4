"""Behaviour tags from a crafted sales history, run through the SQL models on real DuckDB."""

from datetime import datetime
from pathlib import Path

import pytest

from tag_pipeline.lib.events import behaviour_vars, ingest_events
from tag_pipeline.lib.sql import discover_models, run_model, topological_order
from tag_pipeline_tests.support import SQL_ROOT

KEY = b"behaviour-test-key-0123456789"
AS_OF = datetime(2026, 12, 1)  # window: [2026-11-03, 2026-12-01); previous: [2026-10-06, ...)
T0 = datetime(2026, 12, 1, 1)
T1 = datetime(2026, 12, 1, 2)
VARS = {"bestseller_top_share": 0.25, "bestseller_min_units": 5, "trending_min_growth": 1.5,
        "trending_min_units": 5, "season_peak_ratio": 2.0, "season_min_units": 5}
HEADER = "order_id,product_id,quantity,price,timestamp,user_id"


def _sales_lines() -> list[str]:
    lines: list[tuple[str, int, str]] = [
        ("S1", 40, "2026-11-10 10:00:00"), ("S1", 40, "2026-10-10 10:00:00"),
        ("S2", 20, "2026-11-12 10:00:00"), ("S2", 5, "2026-10-12 10:00:00"),
        ("S3", 3, "2026-11-12 10:00:00"),
        ("S3", 50, "2026-12-05 10:00:00"),  # after behaviour_as_of: ignored
        ("C1", 30, "2026-11-15 10:00:00"),
        ("C2", 10, "2026-11-20 10:00:00"), ("C2", 10, "2026-10-20 10:00:00"),
    ]
    lines += [("C1", 2, f"2026-{m:02d}-15 10:00:00") for m in range(1, 11)]
    # D1: one unit a month from Jan 2025 to Nov 2026, twenty in Dec 2025.
    for year, month in [(y, m) for y in (2025, 2026) for m in range(1, 13)]:
        if (year, month) <= (2026, 11):
            units = 20 if (year, month) == (2025, 12) else 1
            lines.append(("D1", units, f"{year}-{month:02d}-15 10:00:00"))
    return [f"O{i},{p},{q},10.0,{t},user{i % 3}" for i, (p, q, t) in enumerate(lines)]


@pytest.fixture
def behaviour(con, tmp_path: Path):
    landing = tmp_path / "sales"
    landing.mkdir()
    (landing / "a.csv").write_text(
        "\n".join([HEADER, *_sales_lines(), "ODUP,S4,100,10.0,2026-11-20 10:00:00,u9"]) + "\n",
        encoding="utf-8")
    ingest_events(con, "sales", landing, key=KEY, loaded_at=T0)
    # A later delivery corrects order line (ODUP, S4) from 100 units to 1.
    (landing / "b.csv").write_text(
        HEADER + "\nODUP,S4,1,10.0,2026-11-20 10:00:00,u9\n", encoding="utf-8")
    ingest_events(con, "sales", landing, key=KEY, loaded_at=T1)
    con.execute(
        """
        CREATE TABLE product_labels AS SELECT * FROM (VALUES
            ('S1', 'Apparel', 'category', 'l1', NULL, 1, 'catalog'),
            ('S1', 'Shirts', 'category', 'l2', 'Apparel', 2, 'catalog'),
            ('S1', 'Red', 'attribute', 'color', NULL, 1, 'catalog'),
            ('S2', 'Apparel', 'category', 'l1', NULL, 1, 'catalog'),
            ('S2', 'Shirts', 'category', 'l2', 'Apparel', 2, 'catalog'),
            ('S3', 'Shirts', 'category', 'l2', 'Apparel', 2, 'catalog'),
            ('S4', 'Shirts', 'category', 'l2', 'Apparel', 2, 'catalog'),
            ('C1', 'Coats', 'category', 'l1', NULL, 1, 'catalog'),
            ('C2', 'Coats', 'category', 'l1', NULL, 1, 'catalog')
        ) t(product_id, tag, tag_type, facet, parent, level, source)
        """
    )

    def run(**overrides: float) -> list[tuple]:
        variables = behaviour_vars(AS_OF, **{**VARS, **overrides})
        models = [m for m in discover_models(SQL_ROOT) if m.folder == "behaviour"]
        for model in topological_order(models):
            run_model(con, model, SQL_ROOT, variables)
        return con.execute(
            "SELECT product_id, tag, tag_type, facet, round(score, 4) FROM behaviour_tags "
            "ORDER BY product_id, tag").fetchall()

    return run


def test_behaviour_tags_for_crafted_history(behaviour):
    assert behaviour() == [
        ("C1", "bestseller", "attribute", "popularity", 1.0),
        ("C1", "singles_day", "scene", "sales_season", round(1 - 1 / (30 / (50 / 11)), 4)),
        ("C1", "trending", "attribute", "popularity", round(1 - 2 / 30, 4)),
        ("D1", "christmas", "scene", "sales_season", round(1 - 1 / (20 / (42 / 23)), 4)),
        ("D1", "winter", "scene", "sales_season", round(1 - 1 / (20 / (42 / 23)), 4)),
        ("S1", "bestseller", "attribute", "popularity", 1.0),
        ("S2", "trending", "attribute", "popularity", 0.75),
    ]


def test_order_line_counted_once_from_latest_load(behaviour, con):
    behaviour()
    assert con.execute(
        "SELECT units, previous_units, category FROM sales_by_product_window "
        "WHERE product_id = 'S4'").fetchall() == [(1, 0, "Shirts")]
    # Raw stays append-only: both deliveries are kept.
    assert con.execute("SELECT quantity FROM raw_sales WHERE order_id = 'ODUP' "
                       "ORDER BY loaded_at").fetchall() == [(100,), (1,)]


def test_evidence_and_score_range(behaviour, con):
    behaviour()
    evidence = dict(con.execute(
        "SELECT product_id || '/' || tag, evidence FROM behaviour_tags").fetchall())
    assert evidence["S1/bestseller"].startswith("rank 1 of 4 in category 'Shirts': 40 units")
    assert evidence["S2/trending"].startswith("20 units in the 28 days to 2026-12-01")
    assert "(x4.0)" in evidence["S2/trending"]
    assert evidence["D1/christmas"].startswith("peak months: 2025-12 20 units (11.0x")
    low, high = con.execute("SELECT min(score), max(score) FROM behaviour_tags").fetchone()
    assert 0 < low <= high <= 1


def test_thresholds_are_vars(behaviour):
    tags = behaviour(bestseller_top_share=0.5, trending_min_units=25, season_peak_ratio=12.0)
    got = {(p, t) for p, t, *_ in tags}
    # Half of Shirts' four products: S1 and S2; S2 (20 units) is no longer trending; D1's
    # December (11x) is below a 12x peak ratio; C1's November (6.6x) too.
    assert got == {("C1", "bestseller"), ("C1", "trending"), ("S1", "bestseller"),
                   ("S2", "bestseller")}
