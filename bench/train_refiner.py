"""Train the tagger on the myntra catalog, then the GAN tag refiner on its outputs, and print
the test-split ablation (tagger vs tagger+refiner, and each part alone), the gate decision,
seconds per refiner epoch and peak memory.

    nice -n 5 .venv/bin/python bench/train_refiner.py [--tagger-epochs 3] [--epochs 10]

``--bundle DIR`` refines a tagger saved by ``bench/train_myntra.py --out DIR`` (its ``bundle``
folder: the fused tagger with its feature columns) instead of training a short CNN + BiLSTM, so
the refiner is measured on the scores the served tagger gives; the per-facet table then sits
beside ``train_myntra``'s.

``--cache FILE.npz`` keeps the tagger's outputs (embeddings, scores, targets, thresholds, label
space) so refiner settings can be compared without training the tagger again; the first run
writes it, later runs with the same file read it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cleaned_catalog, peak_rss_mb, report  # noqa: E402

from tag_pipeline.lib.models.bundle import TaggerBundle, load_bundle  # noqa: E402
from tag_pipeline.lib.models.labels import SOFTMAX, LabelSpace  # noqa: E402
from tag_pipeline.lib.models.refiner import (  # noqa: E402
    RefinerConfig,
    ablate,
    refine_decisions,
    refiner_gate,
    train_refiner,
)
from tag_pipeline.lib.models.refiner_config import GATE_TOLERANCE  # noqa: E402
from tag_pipeline.lib.models.scoring import apply_thresholds, evaluate_heads  # noqa: E402
from tag_pipeline.lib.models.serving import tagger_outputs  # noqa: E402
from tag_pipeline.lib.models.tagger import TaggerConfig  # noqa: E402
from tag_pipeline.lib.models.training import build_features, train_model  # noqa: E402

SPLITS = ("train", "val", "test")


def tagger_split_outputs(args: argparse.Namespace) -> dict:
    """Train the tagger and return its outputs per split (or read them from --cache)."""
    cache = Path(args.cache) if args.cache else None
    if cache is not None and cache.is_file():
        data = np.load(cache, allow_pickle=False)
        space = LabelSpace.from_json(str(data["space"]))
        out = {"space": space, "cached": True, "tagger_s": float(data["tagger_s"]),
               "thresholds": {h.name: data[f"thr/{h.name}"] for h in space.heads}}
        for split in SPLITS:
            out[split] = (data[f"{split}/emb"],
                          {h.name: data[f"{split}/s/{h.name}"] for h in space.heads},
                          {h.name: data[f"{split}/y/{h.name}"] for h in space.heads})
        return out
    _, products, labels = cleaned_catalog(args.profile)
    started = time.perf_counter()
    if args.bundle:
        bundle = load_bundle(Path(args.bundle))
        features = build_features(products, labels, feature_columns=bundle.feature_columns)
        if features.space != bundle.space:
            raise SystemExit(f"--bundle {args.bundle}: its label space is not the one the "
                             f"profile {args.profile!r} gives; train it on that catalog")
    else:
        features = build_features(products, labels)
        config = TaggerConfig(epochs=args.tagger_epochs, patience=args.tagger_epochs)
        trained = train_model(features, config, on_epoch_end=lambda e, logs: print(
            f"tagger epoch {e + 1}: loss {logs['loss']:.4f} val_loss {logs['val_loss']:.4f} "
            f"{logs['seconds']:.1f} s", flush=True))
        bundle = TaggerBundle(model=trained.model, space=trained.space, vocab=trained.vocab,
                              thresholds=trained.thresholds, config=config)
    out = {"space": features.space, "thresholds": bundle.thresholds, "cached": False}
    for split in SPLITS:
        emb, scores = tagger_outputs(bundle, features.split(split))
        out[split] = (emb, scores, features.targets[split])
    out["tagger_s"] = time.perf_counter() - started
    if cache is not None:
        arrays = {"space": np.array(features.space.to_json()),
                  "tagger_s": np.array(out["tagger_s"])}
        arrays.update({f"thr/{k}": v for k, v in bundle.thresholds.items()})
        for split in SPLITS:
            emb, scores, targets = out[split]
            arrays[f"{split}/emb"] = emb
            arrays.update({f"{split}/s/{k}": v for k, v in scores.items()})
            arrays.update({f"{split}/y/{k}": v for k, v in targets.items()})
        np.savez(cache, **arrays)
    return out


def facet_table(refiner, thresholds: dict, embeddings: np.ndarray, scores: dict,
                targets: dict) -> pl.DataFrame:
    """Accuracy (single-valued facets) and macro-F1 per head of the tagger's decisions and of
    the refined ones, on the test split."""
    space = refiner.space
    decisions = {"tagger": apply_thresholds(scores, thresholds, space),
                 "tagger+refiner": refine_decisions(refiner, embeddings, scores)}
    rows = []
    for head in space.heads:
        truth = np.asarray(targets[head.name]) > 0
        row: dict[str, object] = {"head": head.name}
        for name, dec in decisions.items():
            pred = np.asarray(dec[head.name]) > 0
            known = truth.any(axis=1)
            row[f"acc {name}"] = (float((pred[known] & truth[known]).any(axis=1).mean())
                                  if head.kind == SOFTMAX and known.any() else float("nan"))
            row[f"macro {name}"] = float(
                evaluate_heads(targets, dec, scores, space)[head.name]["macro_f1"])
        rows.append(row)
    return pl.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tagger-epochs", type=int, default=3)
    parser.add_argument("--profile", default="myntra")
    parser.add_argument("--cache", default=None, help="npz file of the tagger's outputs")
    parser.add_argument("--bundle", default=None,
                        help="a saved tagger bundle to refine (train_myntra.py --out DIR/bundle)")
    defaults = RefinerConfig()
    for name in ("epochs", "supervised_weight", "residual_scale", "adversarial_weight",
                 "learning_rate", "batch_size"):
        kind = type(getattr(defaults, name))
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind,
                            default=getattr(defaults, name))
    parser.add_argument("--tolerance", type=float, default=GATE_TOLERANCE)
    args = parser.parse_args()

    outputs = tagger_split_outputs(args)
    space = outputs["space"]
    config = RefinerConfig(epochs=args.epochs, supervised_weight=args.supervised_weight,
                           residual_scale=args.residual_scale,
                           adversarial_weight=args.adversarial_weight,
                           learning_rate=args.learning_rate, batch_size=args.batch_size)
    print("refiner config", json.dumps(config.to_dict()), flush=True)
    started = time.perf_counter()
    refiner = train_refiner(*outputs["train"], space, config, val=outputs["val"],
                            tagger_thresholds=outputs["thresholds"],
                            on_epoch_end=lambda e, logs: print(
                                f"refiner epoch {e + 1}: critic {logs['critic']:.3f} "
                                f"adv {logs['adversarial']:.3f} sup {logs['supervised']:.3f} "
                                f"val_sup {logs['val_supervised']:.3f} "
                                f"{logs['seconds']:.1f} s", flush=True))
    refiner_s = time.perf_counter() - started
    ablation = ablate(refiner, outputs["thresholds"], *outputs["test"])
    applied, reason = refiner_gate(ablation, tolerance=args.tolerance)
    with pl.Config(tbl_rows=20, tbl_cols=20, float_precision=4, tbl_width_chars=200):
        print(ablation.table())
        print("test split, per facet: tagger vs tagger + refiner")
        print(facet_table(refiner, outputs["thresholds"], *outputs["test"]))
    seconds = refiner.history["seconds"]
    report([
        ("products", ", ".join(f"{s} {len(outputs[s][0])}" for s in SPLITS)),
        ("tags in the label space", str(sum(h.size for h in space.heads))),
        ("incompatible pairs", f"{len(refiner.compatibility.pairs)} (+ "
                               f"{len(refiner.compatibility.single_valued)} single-valued "
                               "facets)"),
        ("tagger train + outputs", f"{outputs['tagger_s']:.0f} s"
                                   + (" (read from cache)" if outputs["cached"] else "")),
        ("refiner training wall", f"{refiner_s:.0f} s, {len(seconds)} epochs, "
                                  f"{sum(seconds) / len(seconds):.1f} s/epoch"),
        ("val supervised loss", f"tagger {refiner.history['val_supervised_tagger'][0]:.4f}, "
                                f"refiner best {min(refiner.history['val_supervised']):.4f} "
                                f"(epoch {int(refiner.history['best_epoch'][0]) + 1})"),
        ("delta micro_f1 / macro_f1", f"{ablation.delta('micro_f1'):+.4f} / "
                                      f"{ablation.delta('macro_f1'):+.4f}"),
        ("refined heads", ", ".join(refiner.refined_heads or ()) or "none"
                          if refiner.refined_heads is not None else "all (no choice)"),
        ("gate", f"{'APPLY' if applied else 'REFUSE'}: {reason}"),
        ("peak RSS", f"{peak_rss_mb():,.0f} MB"),
    ])


if __name__ == "__main__":
    main()
