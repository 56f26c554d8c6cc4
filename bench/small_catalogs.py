"""Small catalogs cut from a real one: does the fused tagger beat the baseline on every facet
of a catalog nobody tuned for?

The catalog (myntra by default) is cut into ``--parts`` disjoint catalogs by a hash of the
product id (md5 of the id, modulo ``--parts``); ``--take`` of them are used. On each, the whole
fused tagger is trained with the profile's settings (``training:``) as ``model_job`` would, and
scored on its own test split next to the baseline trained in the same run (TF-IDF + LinearSVC,
same split, same inputs). A small catalog has a small validation split, on which every choice
of the fusion is made: this is where a choice that won on validation by chance shows as a
facet lost to the baseline on test.

Printed: per catalog and single-valued facet, the test rows and how many the tagger, the
tagger without joint hierarchy decoding (``tagger_flat``: each category level its own arg-max),
its linear backend and the baseline get right, with the fusion setting the head took; then the
totals and the facets where the tagger is below the baseline or below its linear backend.

    nice -n 5 .venv/bin/python bench/small_catalogs.py [--profile myntra] [--parts 10]
        [--take 10]

On myntra with 10 parts each catalog has about 3,800 products and trains in about a minute.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cleaned_catalog, peak_rss_mb, report  # noqa: E402

from tag_pipeline.lib.models.fusion import LINEAR  # noqa: E402
from tag_pipeline.lib.models.labels import SOFTMAX  # noqa: E402
from tag_pipeline.lib.models.tagger import TaggerConfig  # noqa: E402
from tag_pipeline.lib.models.training import (  # noqa: E402
    BASELINE,
    TAGGER,
    TAGGER_FLAT,
    build_features,
    evaluate_on_test,
    train_model,
)


def _part(product_id: str, parts: int) -> int:
    return int(hashlib.md5(product_id.encode()).hexdigest(), 16) % parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="myntra")
    parser.add_argument("--parts", type=int, default=10)
    parser.add_argument("--take", type=int, default=None,
                        help="how many of the parts to train on (default: all)")
    args = parser.parse_args()
    if args.parts < 2:
        parser.error(f"--parts must be at least 2, got {args.parts}")
    if args.take is not None and not 1 <= args.take <= args.parts:
        parser.error(f"--take must be between 1 and --parts ({args.parts}), got {args.take}")
    profile, products, labels = cleaned_catalog(args.profile)
    config = TaggerConfig.from_dict({**TaggerConfig().to_dict(), **profile.training})
    part_of = products.select(
        "product_id", part=pl.col("product_id").map_elements(
            lambda s: _part(s, args.parts), return_dtype=pl.Int64))
    rows = []
    started = time.perf_counter()
    for part in range(args.take or args.parts):
        t0 = time.perf_counter()
        ids = part_of.filter(pl.col("part") == part)["product_id"].implode()
        features = build_features(products.filter(pl.col("product_id").is_in(ids)),
                                  labels.filter(pl.col("product_id").is_in(ids)),
                                  feature_columns=profile.features)
        trained = train_model(features, config)
        evaluation = evaluate_on_test(trained, features)
        for head in features.space.heads:
            if head.kind != SOFTMAX:
                continue
            known = int(features.targets["test"][head.name].any(axis=1).sum())
            if not known:  # no test product has this facet: nothing to count
                continue
            scope = f"head:{head.name}"

            def right(model: str, evaluation=evaluation, scope: str = scope,
                      known: int = known) -> int:
                return round(evaluation.metric(model, "all", scope, "accuracy") * known)

            h = trained.fusion.heads[head.name] if trained.fusion is not None else None
            rows.append({
                "catalog": part, "head": head.name, "test rows": known,
                "tagger": right(TAGGER),
                "tagger_flat": (right(TAGGER_FLAT) if TAGGER_FLAT in evaluation.results
                                else None),
                "linear": right(LINEAR) if LINEAR in evaluation.results else None,
                "baseline": right(BASELINE),
                "fusion": (f"cnn {h.weight:.1f} prior {h.prior_power:.2f} "
                           f"photo {h.photo_weight:.1f}") if h else "cnn alone"})
        print(f"catalog {part}: {features.split('train').height} train / "
              f"{features.split('val').height} val / {features.split('test').height} test "
              f"products, {time.perf_counter() - t0:.0f} s", flush=True)
    if not rows:
        raise SystemExit(f"profile {args.profile!r} has no single-valued facet to compare")
    table = pl.DataFrame(rows)
    with pl.Config(tbl_rows=500, tbl_cols=20, tbl_width_chars=300, fmt_str_lengths=60):
        print(table)
        print("facets below the baseline:")
        print(table.filter(pl.col("tagger") < pl.col("baseline")))
        print("facets below the linear backend:")
        print(table.filter(pl.col("tagger") < pl.col("linear")))
    totals = table.select(pl.col("test rows", "tagger", "linear", "baseline",
                                 "tagger_flat").sum()).row(0)
    report([
        ("catalogs", f"{args.take or args.parts} of {args.parts} parts of {args.profile}"),
        ("single-valued facets", str(table.height)),
        ("test cells right", f"tagger {totals[1]:,}, linear {totals[2]:,}, baseline "
                             f"{totals[3]:,} of {totals[0]:,}"),
        ("  without joint decoding", f"tagger_flat {totals[4]:,}"),
        ("accuracy", f"tagger {totals[1] / totals[0]:.4f}, baseline {totals[3] / totals[0]:.4f}"),
        ("facets tagger < baseline", str(int((table["tagger"] < table["baseline"]).sum()))),
        ("facets tagger > baseline", str(int((table["tagger"] > table["baseline"]).sum()))),
        ("facets tagger < linear", str(int((table["tagger"] < table["linear"]).sum()))),
        ("wall", f"{time.perf_counter() - started:.0f} s"),
        ("peak RSS", f"{peak_rss_mb():,.0f} MB"),
    ])


if __name__ == "__main__":
    main()
