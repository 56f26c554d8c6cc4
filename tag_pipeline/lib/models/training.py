"""Features, training and honest evaluation of the tagger, next to the TF-IDF baseline.

The split comes from a hash of the product id; the label space, the vocabulary, the
baseline and the model learn from the training split only; early stopping and the decision
thresholds use the validation split; every reported number comes from the test split, which
nothing else ever sees. The baseline is trained in the same call on the same split.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tag_pipeline.lib.models.baseline import baseline_scores, train_baseline
from tag_pipeline.lib.models.labels import (
    LabelSpace,
    build_label_space,
    encode_labels,
    sample_weights,
)
from tag_pipeline.lib.models.scoring import apply_thresholds, evaluate_heads, tune_thresholds
from tag_pipeline.lib.models.split import assign_split

SPLITS = ("train", "val", "test")
PRODUCT_COLUMNS = ["product_id", "title", "description", "image_path"]


@dataclass
class FeatureSet:
    """Products with their split, the label space and the encoded targets per split."""

    products: pl.DataFrame  # product_id, title, description, image_path, split
    space: LabelSpace
    targets: dict[str, dict[str, np.ndarray]]  # split -> head -> array

    def split(self, name: str) -> pl.DataFrame:
        """The products of one split, in the row order of its targets."""
        return self.products.filter(pl.col("split") == name)

    @classmethod
    def from_stored(cls, products: pl.DataFrame, labels: pl.DataFrame,
                    space: LabelSpace) -> FeatureSet:
        """Rebuild from the stored product_features rows and label space."""
        frame = products.select([*PRODUCT_COLUMNS, "split"]).sort("product_id")
        targets = {
            s: encode_labels(labels, frame.filter(pl.col("split") == s)["product_id"], space)
            for s in SPLITS
        }
        return cls(products=frame, space=space, targets=targets)

    def counts(self) -> dict[str, int]:
        """Products per split, and per split with a usable image."""
        out = {f"products.{s}": self.split(s).height for s in SPLITS}
        out.update({f"with_image.{s}": self.split(s)["image_path"].is_not_null().sum()
                    for s in SPLITS})
        return out


def build_features(products: pl.DataFrame, labels: pl.DataFrame, min_support: int = 3,
                   salt: str = "tag_pipeline-v1") -> FeatureSet:
    """Split products by id hash, decide the label space on train and encode every split.

    Args:
        products: cleaned products (product_id, title, description, image_path).
        labels: product_labels (product_id, tag, tag_type, facet).
        min_support: Tags with fewer training products are reported as rare, not modelled.
        salt: The split's hash salt; changing it reshuffles every product.
    """
    missing = [c for c in PRODUCT_COLUMNS if c not in products.columns]
    if missing:
        raise ValueError(f"products frame lacks column(s) {missing}")
    frame = products.select(PRODUCT_COLUMNS).with_columns(
        pl.col("description").fill_null(""),
        split=assign_split(products["product_id"], salt=salt),
    ).sort("product_id")
    labelled = set(labels["product_id"].unique().to_list())
    frame = frame.filter(pl.col("product_id").is_in(labelled))
    train_ids = frame.filter(pl.col("split") == "train")["product_id"]
    if train_ids.is_empty():
        raise ValueError("no labelled product falls in the training split")
    space = build_label_space(labels, train_ids, min_support=min_support)
    targets = {
        s: encode_labels(labels, frame.filter(pl.col("split") == s)["product_id"], space)
        for s in SPLITS
    }
    return FeatureSet(products=frame, space=space, targets=targets)


@dataclass
class TrainedTagger:
    """A trained model with everything needed to use it the way it was evaluated."""

    model: object  # keras.Model (keras is imported only when training)
    space: LabelSpace
    vocab: list[str]
    thresholds: dict[str, np.ndarray]
    config: object  # TaggerConfig
    history: dict[str, list[float]]
    epoch_seconds: list[float] = field(default_factory=list)


def train_model(features: FeatureSet, config: object,
                on_epoch_end: Callable[[int, dict[str, float]], None] | None = None
                ) -> TrainedTagger:
    """Learn the vocabulary and the tagger on train; stop early and tune thresholds on val."""
    import tensorflow as tf

    from tag_pipeline.lib.models.dataset import make_dataset
    from tag_pipeline.lib.models.images import DecodedImages
    from tag_pipeline.lib.models.tagger import predict_scores, train_tagger
    from tag_pipeline.lib.models.text import learn_vocabulary, make_tokenizer, product_texts

    tf.keras.utils.set_random_seed(config.seed)
    train, val = features.split("train"), features.split("val")
    vocab = learn_vocabulary(product_texts(train), vocab_size=config.vocab_size)
    tokenizer = make_tokenizer(vocab, config.seq_len)
    space = features.space

    def dataset(frame: pl.DataFrame, split: str, shuffle: bool, images: DecodedImages):
        targets = features.targets[split]
        return make_dataset(frame, targets, tokenizer, image_size=config.image_size,
                            batch_size=config.batch_size, shuffle=shuffle, seed=config.seed,
                            sample_weights=sample_weights(targets, space,
                                                          config.class_weight_power),
                            images=images)

    epoch_seconds: list[float] = []
    last = [time.perf_counter()]

    def epoch_end(epoch: int, logs: dict[str, float]) -> None:
        now = time.perf_counter()
        epoch_seconds.append(now - last[0])
        last[0] = now
        if on_epoch_end is not None:
            on_epoch_end(epoch, {**logs, "seconds": epoch_seconds[-1]})

    # every epoch reads both splits: decode their photos once, into files that go with the
    # folder (the input pipeline then gathers pixels instead of decoding JPEGs each epoch)
    with tempfile.TemporaryDirectory(prefix="tag_pipeline_images_") as folder:
        train_images = DecodedImages(train["image_path"].to_list(), config.image_size, folder)
        val_images = DecodedImages(val["image_path"].to_list(), config.image_size, folder)
        last[0] = time.perf_counter()
        model, history = train_tagger(dataset(train, "train", True, train_images),
                                      dataset(val, "val", False, val_images),
                                      space, config, on_epoch_end=epoch_end)
        val_scores = predict_scores(
            model, make_dataset(val, None, tokenizer, image_size=config.image_size,
                                batch_size=512, images=val_images), space)
    thresholds = tune_thresholds(val_scores, features.targets["val"], space)
    return TrainedTagger(model=model, space=space, vocab=vocab, thresholds=thresholds,
                         config=config, history=history, epoch_seconds=epoch_seconds)


def metrics_by_scope(truth: dict[str, np.ndarray], scores: dict[str, np.ndarray],
                      thresholds: dict[str, np.ndarray], space: LabelSpace,
                      rows: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Metrics overall ('all'), per tag type ('type:<t>') and per head ('head:<h>')."""
    if rows is not None:
        truth = {k: v[rows] for k, v in truth.items()}
        scores = {k: v[rows] for k, v in scores.items()}
    preds = apply_thresholds(scores, thresholds, space)
    per_head = evaluate_heads(truth, preds, scores, space)
    out = {"all": per_head.pop("all")}
    out.update({f"head:{h}": m for h, m in per_head.items()})
    for tag_type in sorted({h.tag_type for h in space.heads}):
        sub = dataclasses.replace(space, heads=tuple(h for h in space.heads
                                                     if h.tag_type == tag_type))
        out[f"type:{tag_type}"] = evaluate_heads(truth, preds, scores, sub)["all"]
    return out


@dataclass
class Evaluation:
    """Test-split metrics of the tagger and the baseline, on all products and on the image
    subset: ``results[model][subset][scope][metric]``."""

    results: dict[str, dict[str, dict[str, dict[str, float]]]]
    n_test: int
    n_test_images: int
    baseline_seconds: float

    def table(self) -> pl.DataFrame:
        """One row per (model, subset, scope) with every metric as a column."""
        rows = [{"model": m, "subset": s, "scope": scope, **metrics}
                for m, subsets in self.results.items()
                for s, scopes in subsets.items()
                for scope, metrics in scopes.items()]
        return pl.DataFrame(rows)

    def metric(self, model: str, subset: str, scope: str, name: str) -> float:
        """One number, e.g. ``metric('tagger', 'all', 'all', 'micro_f1')``."""
        return float(self.results[model][subset][scope][name])


def evaluate_on_test(trained: TrainedTagger, features: FeatureSet,
                     tagger_scores: dict[str, np.ndarray] | None = None,
                     baseline_seed: int = 42) -> Evaluation:
    """Score the tagger and a baseline trained on the same training split, on the test split.

    The baseline's thresholds are tuned on the validation split too, so both models are
    scored by the same rules.
    """
    test = features.split("test")
    if test.is_empty():
        raise ValueError("the test split is empty: too few products to evaluate")
    truth = features.targets["test"]
    space = features.space
    if tagger_scores is None:
        tagger_scores = score_products(trained, test)
    started = time.perf_counter()
    baseline = train_baseline(features.split("train"), features.targets["train"], space,
                              seed=baseline_seed)
    baseline_val = baseline_scores(baseline, features.split("val"))
    baseline_thresholds = tune_thresholds(baseline_val, features.targets["val"], space)
    baseline_test = baseline_scores(baseline, test)
    baseline_seconds = time.perf_counter() - started
    with_image = test["image_path"].is_not_null().to_numpy()
    results = {
        "tagger": {"all": metrics_by_scope(truth, tagger_scores, trained.thresholds, space)},
        "baseline": {"all": metrics_by_scope(truth, baseline_test, baseline_thresholds, space)},
    }
    # A text-only catalog has no image subset: report none rather than a made-up number.
    if with_image.any():
        results["tagger"]["images"] = metrics_by_scope(
            truth, tagger_scores, trained.thresholds, space, with_image)
        results["baseline"]["images"] = metrics_by_scope(
            truth, baseline_test, baseline_thresholds, space, with_image)
    return Evaluation(results=results, n_test=test.height,
                      n_test_images=int(with_image.sum()), baseline_seconds=baseline_seconds)


def score_products(trained: TrainedTagger, products: pl.DataFrame,
                   batch_size: int = 512) -> dict[str, np.ndarray]:
    """Scores per head for products (title, description, image_path), in frame order."""
    from tag_pipeline.lib.models.dataset import make_dataset
    from tag_pipeline.lib.models.tagger import predict_scores
    from tag_pipeline.lib.models.text import make_tokenizer

    tokenizer = make_tokenizer(trained.vocab, trained.config.seq_len)
    dataset = make_dataset(products, None, tokenizer, image_size=trained.config.image_size,
                           batch_size=batch_size)
    return predict_scores(trained.model, dataset, trained.space)
