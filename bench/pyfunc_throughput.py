"""Serving throughput of the tagger: products/s through ``serving.tag_frame`` (the pyfunc's
predict) with images and text-only, next to preprocessing alone, ``bundle.network`` alone
(imageless rows skip the CNN) and the whole model's forward pass on the same pre-built
batches, so the cost of each part is visible.

Trains a default-sized tagger (64x64 images, BiLSTM 64, seq_len 48) for one epoch on the demo
catalog, saves and reloads it as a bundle, then times each path (best of ``--repeats``).
That tagger is the CNN + BiLSTM alone. ``--bundle DIR`` times a saved fused tagger instead
(``bench/train_myntra.py --out DIR`` writes one to ``DIR/bundle``: CNN + BiLSTM, linear
backend with feature crosses, photo-colour backend, fusion) on myntra's products (photos,
``year``), and adds the linear and photo-colour backends' own rates.

    .venv/bin/python bench/pyfunc_throughput.py [--products 2000] [--rows 4000]
        [--bundle /tmp/bench_myntra/bundle]
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

from tag_pipeline.lib.catalog.demo import generate_demo_catalog  # noqa: E402


def read_demo(folder: Path) -> pl.DataFrame:
    """Newest row per sku from the demo files; image_path absolute, null when absent."""
    frames = [pl.read_csv(p, infer_schema=False) for p in sorted(folder.glob("*.csv"))]
    frames += [pl.read_ndjson(p, schema={c: pl.Utf8 for c in frames[0].columns})
               for p in sorted(folder.glob("*.jsonl"))]
    rows = pl.concat(frames, how="diagonal").filter(
        pl.col("sku").str.strip_chars().fill_null("") != "",
        pl.col("title").str.strip_chars().fill_null("") != "")
    rows = rows.sort("updated_at").unique("sku", keep="last").sort("sku")
    image = pl.col("image").fill_null("")
    return rows.select(
        pl.col("sku").alias("product_id"), "title",
        pl.col("description").fill_null(""),
        pl.when(image != "").then(pl.lit(f"{folder}/") + image).alias("image_path"),
        "category_path", "attributes", "occasions")


def demo_labels(products: pl.DataFrame) -> pl.DataFrame:
    """Category leaf, colour/material/gender attributes and occasions as label rows."""
    category = products.select(
        "product_id", tag=pl.col("category_path").str.split(" > ").list.last(),
        tag_type=pl.lit("category"), facet=pl.lit("category"))
    pairs = (products.select("product_id", pair=pl.col("attributes").str.split("; "))
             .explode("pair")
             .with_columns(kv=pl.col("pair").str.split_exact(": ", 1))
             .unnest("kv")
             .select("product_id", tag=pl.col("field_1"), tag_type=pl.lit("attribute"),
                     facet=pl.col("field_0"))
             .filter(pl.col("facet").is_in(["color", "material", "gender"])))
    occasions = (products.select("product_id", tag=pl.col("occasions").str.split("|"))
                 .explode("tag")
                 .select("product_id", "tag", tag_type=pl.lit("scene"), facet=pl.lit("occasion")))
    return pl.concat([category, pairs, occasions]).drop_nulls().filter(pl.col("tag") != "")


def train_bundle(products: pl.DataFrame, labels: pl.DataFrame):
    from tag_pipeline.lib.models.bundle import TaggerBundle
    from tag_pipeline.lib.models.dataset import make_dataset
    from tag_pipeline.lib.models.labels import build_label_space, encode_labels, sample_weights
    from tag_pipeline.lib.models.serving import product_scores
    from tag_pipeline.lib.models.split import assign_split
    from tag_pipeline.lib.models.tagger import TaggerConfig, train_tagger, tune_thresholds
    from tag_pipeline.lib.models.text import learn_vocabulary, product_texts

    config = TaggerConfig(epochs=1)
    split = products.with_columns(split=assign_split(products["product_id"]))
    train = split.filter(pl.col("split") == "train")
    val = split.filter(pl.col("split") != "train")
    space = build_label_space(labels, train["product_id"])
    bundle = TaggerBundle(model=None, space=space,
                          vocab=learn_vocabulary(product_texts(train), config.vocab_size),
                          thresholds={}, config=config)
    y_train = encode_labels(labels, train["product_id"], space)
    y_val = encode_labels(labels, val["product_id"], space)
    datasets = [make_dataset(frame, y, bundle.tokenizer, config.image_size, config.batch_size,
                             shuffle=shuffle, sample_weights=sample_weights(y, space))
                for frame, y, shuffle in ((train, y_train, True), (val, y_val, False))]
    bundle.model, _ = train_tagger(*datasets, space, config)
    bundle.thresholds = tune_thresholds(product_scores(bundle, val), y_val, space)
    return bundle, train.height


def demo_bundle(tmp: Path, n_products: int):
    """Generate the demo catalog in ``tmp``, train ``train_bundle`` on it and reload it from
    disk: (bundle, products, training products, training seconds)."""
    from tag_pipeline.lib.models.bundle import load_bundle, save_bundle

    folder = tmp / "demo"
    generate_demo_catalog(folder, n_products=n_products)
    products = read_demo(folder)
    started = time.perf_counter()
    trained, n_train = train_bundle(products, demo_labels(products))
    train_s = time.perf_counter() - started
    return load_bundle(save_bundle(trained, tmp / "bundle")), products, n_train, train_s


def read_myntra(rows: int) -> pl.DataFrame:
    """myntra products as a raw export gives them (title, photo path, year): the photographed
    ones first, ``rows`` of them (repeated if needed)."""
    from _common import SHARED_DATA

    folder = SHARED_DATA / "myntra"
    raw = pl.read_csv(folder / "products.csv", infer_schema=False)
    frame = raw.select(
        pl.col("id").alias("product_id"), pl.col("productDisplayName").alias("title"),
        pl.lit("", pl.Utf8).alias("description"),
        pl.col("year").str.replace(r"\.0$", ""),
        pl.concat_str([pl.lit(str(folder / "images") + "/"), pl.col("id"), pl.lit(".jpg")])
        .alias("image_path"))
    exists = [Path(p).is_file() for p in frame["image_path"].to_list()]
    frame = frame.filter(pl.Series(exists))
    repeat = -(-rows // frame.height)
    return pl.concat([frame] * repeat).head(rows)


def best_rate(rows: int, run: Callable[[], object], repeats: int) -> float:
    """Products per second of the fastest of ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return rows / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=2000, help="demo catalog size")
    parser.add_argument("--rows", type=int, default=4000, help="rows tagged per timed run")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bundle", type=Path, default=None,
                        help="a saved (fused) tagger bundle, timed on myntra's products")
    args = parser.parse_args()

    import tensorflow as tf

    from tag_pipeline.lib.models.backends import has_photo, linear_scores
    from tag_pipeline.lib.models.bundle import load_bundle
    from tag_pipeline.lib.models.inputs import model_inputs, product_frame
    from tag_pipeline.lib.models.pyfunc import pandas_to_products, tags_to_pandas
    from tag_pipeline.lib.models.serving import tag_frame

    with tempfile.TemporaryDirectory(prefix="tp_bench_pyfunc_") as tmp:
        if args.bundle is None:
            bundle, products, n_train, train_s = demo_bundle(Path(tmp), args.products)
            with_images = products.filter(pl.col("image_path").is_not_null()).select(
                "product_id", "title", "description", "image_path")
            repeat = -(-args.rows // with_images.height)
            with_images = pl.concat([with_images] * repeat).head(args.rows)
        else:
            bundle = load_bundle(args.bundle)
            with_images = read_myntra(args.rows)
            products, n_train, train_s = with_images, 0, 0.0
        text_only = with_images.with_columns(image_path=pl.lit(None, pl.Utf8))
        as_pandas = with_images.to_pandas()
        bs = args.batch_size
        started = time.perf_counter()
        tag_frame(bundle, with_images.head(8))  # builds the tokenizer, checks the shortcut
        first_call_s = time.perf_counter() - started
        eager_ms = 1000 / best_rate(1, lambda: tag_frame(bundle, with_images.head(1)), 3)
        started = time.perf_counter()
        bundle.compile()
        tag_frame(bundle, with_images.head(1))  # traces the tokenizer and the whole model
        compile_s = time.perf_counter() - started
        compiled_ms = 1000 / best_rate(1, lambda: tag_frame(bundle, with_images.head(1)), 3)

        batches = {name: [model_inputs(bundle, frame.slice(i, bs))
                          for i in range(0, frame.height, bs)]
                   for name, frame in (("images", with_images), ("text", text_only))}
        n = with_images.height
        model = bundle.model

        @tf.function(autograph=False, reduce_retracing=True)
        def forward(x: dict) -> dict:
            return model({k: x[k] for k in ("tokens", "image", "image_mask")}, training=False)

        rates = {
            "tag_frame, images": best_rate(n, lambda: tag_frame(bundle, with_images, bs),
                                           args.repeats),
            "tag_frame, text only": best_rate(n, lambda: tag_frame(bundle, text_only, bs),
                                              args.repeats),
            "pyfunc predict path (pandas), images": best_rate(
                n, lambda: tags_to_pandas(tag_frame(bundle, pandas_to_products(as_pandas), bs)),
                args.repeats),
            "preprocessing only, images": best_rate(
                n, lambda: [model_inputs(bundle, with_images.slice(i, bs))
                            for i in range(0, n, bs)], args.repeats),
            "preprocessing only, text": best_rate(
                n, lambda: [model_inputs(bundle, text_only.slice(i, bs))
                            for i in range(0, n, bs)], args.repeats),
            "CNN + BiLSTM only (bundle.network), image batches": best_rate(
                n, lambda: [bundle.network(x) for x in batches["images"]], args.repeats),
            "CNN + BiLSTM only (bundle.network), text batches": best_rate(
                n, lambda: [bundle.network(x) for x in batches["text"]], args.repeats),
            "whole-model forward, image batches": best_rate(
                n, lambda: [forward(x) for x in batches["images"]], args.repeats),
            "whole-model forward, text batches": best_rate(
                n, lambda: [forward(x) for x in batches["text"]], args.repeats),
        }
        if bundle.linear is not None:
            rates["linear backend only (TF-IDF, crosses, LinearSVCs), text"] = best_rate(
                n, lambda: [linear_scores(bundle, product_frame(text_only.slice(i, bs),
                                                                bundle.feature_columns))
                            for i in range(0, n, bs)], args.repeats)
        if bundle.photo is not None:
            rates["photo-colour backend only (histograms, logistic regressions), images"] = \
                best_rate(n, lambda: [bundle.photo.scores(x["image"], has_photo(x))
                                      for x in batches["images"]], args.repeats)
        tags = tag_frame(bundle, with_images.head(1000), bs)

    params = bundle.model.count_params()
    report([
        ("catalog", (f"{products.height:,} demo products ({n_train:,} train)"
                     if args.bundle is None else f"myntra, bundle {args.bundle}")
         + f", {len(bundle.space.heads)} heads, {params / 1e6:.2f}M parameters"
         + (", fused with the linear backend" if bundle.linear is not None else "")
         + (" and the photo-colour backend (" + ", ".join(bundle.fusion.photo_heads) + ")"
            if bundle.fusion is not None and bundle.fusion.photo_heads else "")),
        ("training", f"1 epoch incl. tracing: {train_s:.1f} s" if args.bundle is None
                     else "none (saved bundle)"),
        ("rows per run", f"{n:,} (rows with an image path, repeated; batch {bs})"),
        ("first call, 8 rows", f"{first_call_s:.2f} s (eager; builds the tokenizer)"),
        ("one-row call, eager", f"{eager_ms:.1f} ms"),
        ("compile + first traced call", f"{compile_s:.2f} s (tokenizer and whole model)"),
        ("one-row call, compiled", f"{compiled_ms:.1f} ms"),
        *[(name, f"{rate:,.0f} products/s") for name, rate in rates.items()],
        ("text shortcut", "on: imageless rows skip the CNN" if bundle.uses_text_shortcut
                          else "off: every row runs the whole model"),
        ("folded batch norms", "on: image rows run the CNN with folded batch norms"
                               if bundle.uses_folded_cnn else "off: the model as trained"),
        ("tags per product", f"{tags.height / 1000:.1f}"),
        ("peak RSS", f"{peak_rss_mb():,.0f} MB"),
    ])


if __name__ == "__main__":
    main()
