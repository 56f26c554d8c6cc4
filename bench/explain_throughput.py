"""Throughput of tag explanations (word occlusion, ``explain.explain_tags``) next to plain
tagging (``serving.tag_frame``) on the same products, so the overhead is visible.

Trains a default-sized tagger for one epoch on the demo catalog the way
``pyfunc_throughput.py`` does, saves and reloads it as a bundle, tags ``--products`` products
and explains every tag, with the products' images and text-only (best of ``--repeats``).

    nice -n 5 .venv/bin/python bench/explain_throughput.py [--products 4000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import polars as pl  # noqa: E402
from _common import peak_rss_mb, report  # noqa: E402
from pyfunc_throughput import demo_bundle  # noqa: E402


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    """Wall seconds of the fastest of ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=4000, help="demo products explained")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--top-k", type=int, default=2)
    parser.add_argument("--max-words", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    from tag_pipeline.lib.models.explain import explain_tags, product_words
    from tag_pipeline.lib.models.serving import tag_frame

    with tempfile.TemporaryDirectory(prefix="tp_bench_explain_") as tmp:
        bundle, products, n_train, train_s = demo_bundle(Path(tmp), args.products)
        bundle.compile()

        frames = {"images": products.select("product_id", "title", "description", "image_path")}
        frames["text only"] = frames["images"].with_columns(image_path=pl.lit(None, pl.Utf8))
        bs = args.batch_size
        tag_frame(bundle, frames["images"].head(bs), bs)  # traces the tokenizer and the model
        rows: list[tuple[str, str]] = []
        sample = None
        for name, frame in frames.items():
            tags = tag_frame(bundle, frame, bs)
            tag_s = best_seconds(lambda f=frame: tag_frame(bundle, f, bs), args.repeats)

            def explain(f: pl.DataFrame = frame, t: pl.DataFrame = tags) -> pl.DataFrame:
                return explain_tags(bundle, f, t, top_k=args.top_k, max_words=args.max_words,
                                    batch_size=bs)

            explained = explain()
            explain_s = best_seconds(explain, args.repeats)
            n = frame.height
            rows += [
                (f"tag_frame, {name}", f"{n / tag_s:,.0f} products/s, {tags.height / tag_s:,.0f} "
                                       f"tags/s ({tag_s:.1f} s)"),
                (f"explain_tags, {name}", f"{n / explain_s:,.0f} products/s, "
                                          f"{tags.height / explain_s:,.0f} explanations/s "
                                          f"({explain_s:.1f} s, {explain_s / tag_s:.1f}x "
                                          "tag_frame)"),
                (f"explained tags, {name}", f"{explained['explanation'].is_not_null().mean():.1%}"
                                            f" of {tags.height:,}"),
            ]
            sample = explained if sample is None else sample
        titles = frames["images"]["title"].fill_null("").to_list()
        descriptions = frames["images"]["description"].fill_null("").to_list()
        words = [len(product_words(t, d.strip()[:600], args.max_words))
                 for t, d in zip(titles, descriptions, strict=True)]

    preview = (sample.join(products.select("product_id", "title"), on="product_id")
               .select("title", "tag", "explanation").head(8))
    report([
        ("catalog", f"{products.height:,} demo products ({n_train:,} train), "
                    f"{len(bundle.space.heads)} heads, "
                    f"{bundle.model.count_params() / 1e6:.2f}M parameters"),
        ("training", f"1 epoch incl. tracing: {train_s:.1f} s"),
        ("settings", f"batch {bs}, top_k {args.top_k}, max_words {args.max_words}, "
                     f"best of {args.repeats}"),
        ("words occluded per product", f"{sum(words) / len(words):.1f} on average "
                                       f"(max {max(words)})"),
        *rows,
        ("peak RSS", f"{peak_rss_mb():,.0f} MB"),
    ])
    with pl.Config(fmt_str_lengths=60, tbl_rows=8, tbl_width_chars=140):
        print(preview)


if __name__ == "__main__":
    main()
