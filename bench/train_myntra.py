"""Train the tagger on the myntra catalog and print the quality table next to the TF-IDF
baseline (same split, same run), time per epoch and peak memory.

    .venv/bin/python bench/train_myntra.py [--epochs 12] [--patience 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, SQL_ROOT, peak_rss_mb, report  # noqa: E402

from tag_pipeline.lib.catalog.chain import run_catalog_chain  # noqa: E402
from tag_pipeline.lib.catalog.profile import load_profile  # noqa: E402
from tag_pipeline.lib.models.tagger import TaggerConfig  # noqa: E402
from tag_pipeline.lib.models.training import (  # noqa: E402
    build_features,
    evaluate_on_test,
    train_model,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--profile", default="myntra")
    args = parser.parse_args()
    profile = load_profile(args.profile, {"shared_data": str(SHARED_DATA)})
    with tempfile.TemporaryDirectory(prefix="tp_bench_train_") as tmp:
        con = duckdb.connect(str(Path(tmp) / "w.duckdb"), config={"memory_limit": "1GB"})
        run_catalog_chain(con, profile, SQL_ROOT)
        products = con.sql("SELECT product_id, title, description, image_path "
                           "FROM cleaned_products").pl()
        labels = con.sql("SELECT product_id, tag, tag_type, facet FROM product_labels").pl()
        con.close()
    features = build_features(products, labels)
    config = TaggerConfig(epochs=args.epochs, patience=args.patience)
    started = time.perf_counter()
    trained = train_model(features, config, on_epoch_end=lambda e, logs: print(
        f"epoch {e + 1}: loss {logs['loss']:.4f} val_loss {logs['val_loss']:.4f} "
        f"{logs['seconds']:.1f} s", flush=True))
    train_s = time.perf_counter() - started
    evaluation = evaluate_on_test(trained, features)
    table = evaluation.table().filter(~pl.col("scope").str.starts_with("head:")).select(
        "model", "subset", "scope", "micro_f1", "macro_f1", "samples_f1", "p_at_1", "p_at_5",
        "ndcg_at_5").sort("subset", "scope", "model")
    with pl.Config(tbl_rows=100, tbl_cols=20, float_precision=4, tbl_width_chars=200):
        print(table)
    report([
        ("products", str(features.counts())),
        ("training wall", f"{train_s:.0f} s, {len(trained.epoch_seconds)} epochs, "
                          f"{sum(trained.epoch_seconds) / len(trained.epoch_seconds):.1f} s/epoch"),
        ("baseline fit + score", f"{evaluation.baseline_seconds:.0f} s"),
        ("peak RSS", f"{peak_rss_mb():,.0f} MB"),
    ])


if __name__ == "__main__":
    main()
