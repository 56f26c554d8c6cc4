"""Train the tagger on the myntra catalog and print the quality table next to the TF-IDF
baseline (same split, same run), time per epoch and peak memory.

    nice -n 5 .venv/bin/python bench/train_myntra.py [--epochs 20] [--patience 3]
        [--profile myntra|cn_reviews] [--set key=value ...]

``--set`` overrides one ``TaggerConfig`` setting (JSON value, e.g. ``--set ngram_filters=0``
or ``--set cnn_filters=[16,32,64]``), so two architectures can be compared on the same split.
The catalog chain builds only the SQL models that training reads (``TRAINING_SQL_FOLDERS``):
the tagging tables downstream of the model need a trained model first.
"""

from __future__ import annotations

import argparse
import json
import shutil
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

TRAINING_SQL_FOLDERS = ("macros", "staging", "cleaned", "labels")


def training_sql_root(folder: Path) -> Path:
    """A copy of the SQL models up to cleaned_products and product_labels, under ``folder``."""
    root = folder / "dbt_like_sql"
    for name in TRAINING_SQL_FOLDERS:
        shutil.copytree(SQL_ROOT / name, root / name)
    return root


def parse_settings(pairs: list[str]) -> dict[str, object]:
    """``key=json`` pairs as TaggerConfig overrides (a bare word is read as a string)."""
    settings: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--profile", default="myntra")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="override one TaggerConfig setting")
    args = parser.parse_args()
    profile = load_profile(args.profile, {"shared_data": str(SHARED_DATA)})
    with tempfile.TemporaryDirectory(prefix="tp_bench_train_") as tmp:
        con = duckdb.connect(str(Path(tmp) / "w.duckdb"), config={"memory_limit": "1GB"})
        run_catalog_chain(con, profile, training_sql_root(Path(tmp)))
        products = con.sql("SELECT product_id, title, description, image_path "
                           "FROM cleaned_products").pl()
        labels = con.sql("SELECT product_id, tag, tag_type, facet FROM product_labels").pl()
        con.close()
    features = build_features(products, labels)
    config = TaggerConfig.from_dict({**TaggerConfig().to_dict(), "epochs": args.epochs,
                                     "patience": args.patience,
                                     **parse_settings(args.settings)})
    print(f"config: {config.to_dict()}", flush=True)
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
    best = min(range(len(trained.history["val_loss"])),
               key=trained.history["val_loss"].__getitem__)
    report([
        ("products", str(features.counts())),
        ("training wall", f"{train_s:.0f} s, {len(trained.epoch_seconds)} epochs, "
                          f"{sum(trained.epoch_seconds) / len(trained.epoch_seconds):.1f} s/epoch"),
        ("best epoch", f"{best + 1} (val_loss {trained.history['val_loss'][best]:.4f})"),
        ("baseline fit + score", f"{evaluation.baseline_seconds:.0f} s"),
        ("peak RSS", f"{peak_rss_mb():,.0f} MB"),
    ])


if __name__ == "__main__":
    main()
