"""Features, training and honest evaluation of the fused tagger, next to the strong baseline.

The split comes from a hash of the product id; the label space, the vocabulary, the backends
(the CNN + BiLSTM, the linear n-gram model, and the embedding and photo-colour backends where
they are trained) and the baseline learn from the training split only; early stopping, the
linear backend's calibration, the fusion weights, the prior adjustment and the decision
thresholds use the validation split; every reported number comes from the test split, which
nothing else ever sees. The baseline (TF-IDF word and character n-grams with LinearSVCs,
``baseline``) is trained in the same call on the same split and reads the same inputs, feature
columns included.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tag_pipeline.lib.models.baseline import (
    BaselineTagger,
    baseline_scores,
    calibrate,
    train_baseline,
)
from tag_pipeline.lib.models.catalog_features import (
    FEATURE_TEXT_COLUMN,
    FeatureColumn,
    with_feature_text,
)
from tag_pipeline.lib.models.comparison import METRICS as COMPARED_METRICS
from tag_pipeline.lib.models.comparison import (
    Difference,
    metric_of,
    paired_differences,
    product_counts,
)
from tag_pipeline.lib.models.fusion import (
    CNN,
    EMBEDDING,
    LINEAR,
    PHOTO,
    Fusion,
    fuse,
    tune_fusion,
)
from tag_pipeline.lib.models.labels import (
    SOFTMAX,
    Head,
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

    products: pl.DataFrame  # product_id, title, description, image_path, feature_text, split
    space: LabelSpace
    targets: dict[str, dict[str, np.ndarray]]  # split -> head -> array
    feature_columns: tuple[FeatureColumn, ...] = ()

    def split(self, name: str) -> pl.DataFrame:
        """The products of one split, in the row order of its targets."""
        return self.products.filter(pl.col("split") == name)

    def text_columns(self) -> tuple[str, ...]:
        """The text columns the training products have (``title``, and ``description`` where
        any training product has one): the inputs the model learns to read."""
        train = self.split("train")
        has_description = "description" in train.columns and bool(
            (train["description"].fill_null("").str.strip_chars() != "").any())
        return ("title", "description") if has_description else ("title",)

    @classmethod
    def from_stored(cls, products: pl.DataFrame, labels: pl.DataFrame,
                    space: LabelSpace,
                    feature_columns: tuple[FeatureColumn, ...] = ()) -> FeatureSet:
        """Rebuild from the stored product_features rows and label space."""
        if FEATURE_TEXT_COLUMN not in products.columns:
            products = products.with_columns(pl.lit("", pl.Utf8).alias(FEATURE_TEXT_COLUMN))
        frame = products.select([*PRODUCT_COLUMNS, FEATURE_TEXT_COLUMN, "split"]).sort(
            "product_id")
        targets = {
            s: encode_labels(labels, frame.filter(pl.col("split") == s)["product_id"], space)
            for s in SPLITS
        }
        return cls(products=frame, space=space, targets=targets,
                   feature_columns=tuple(feature_columns))

    def counts(self) -> dict[str, int]:
        """Products per split, and per split with a usable image."""
        out = {f"products.{s}": self.split(s).height for s in SPLITS}
        out.update({f"with_image.{s}": self.split(s)["image_path"].is_not_null().sum()
                    for s in SPLITS})
        return out


def build_features(products: pl.DataFrame, labels: pl.DataFrame, min_support: int = 3,
                   salt: str = "tag_pipeline-v1",
                   feature_columns: tuple[FeatureColumn, ...] = ()) -> FeatureSet:
    """Split products by id hash, decide the label space on train and encode every split.

    Args:
        products: cleaned products (product_id, title, description, image_path; with feature
            columns, their raw values as columns or in the ``tag_fields`` map).
        labels: product_labels (product_id, tag, tag_type, facet; optionally level and
            parent, from which the category taxonomy is learned).
        min_support: Tags with fewer training products are reported as rare, not modelled.
        salt: The split's hash salt; changing it reshuffles every product.
        feature_columns: The profile's feature columns, read by every model as words.
    """
    missing = [c for c in PRODUCT_COLUMNS if c not in products.columns]
    if missing:
        raise ValueError(f"products frame lacks column(s) {missing}")
    products = with_feature_text(products, tuple(feature_columns))
    frame = products.select([*PRODUCT_COLUMNS, FEATURE_TEXT_COLUMN]).with_columns(
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
    return FeatureSet(products=frame, space=space, targets=targets,
                      feature_columns=tuple(feature_columns))


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
    # the fused tagger: the linear backend, the fusion and each backend's own thresholds
    linear: BaselineTagger | None = None
    fusion: Fusion | None = None
    backend_thresholds: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    feature_columns: tuple[FeatureColumn, ...] = ()
    linear_seconds: float = 0.0
    # the text columns training products had (None: not recorded)
    text_columns: tuple[str, ...] | None = None
    # the optional embedding backend (``embeddings``; config ``text_embeddings``)
    embedding: object | None = None  # embeddings.EmbeddingBackend
    embedding_seconds: float = 0.0
    embedding_stats: object | None = None  # embeddings.EncodeStats of train + val
    # the photo-colour backend (``photo_colour``; config ``photo_colour``), where trained
    photo: object | None = None  # photo_colour.PhotoColourBackend
    photo_seconds: float = 0.0

    def bundle(self):  # -> bundle.TaggerBundle (keras is imported only where it is used)
        """The trained tagger as a bundle (``bundle.save_bundle`` writes it)."""
        from tag_pipeline.lib.models.bundle import TaggerBundle

        return TaggerBundle(model=self.model, space=self.space, vocab=self.vocab,
                            thresholds=self.thresholds, config=self.config, linear=self.linear,
                            fusion=self.fusion, backend_thresholds=self.backend_thresholds,
                            feature_columns=self.feature_columns,
                            text_columns=self.text_columns, embedding=self.embedding,
                            photo=self.photo)

    @classmethod
    def from_bundle(cls, bundle) -> TrainedTagger:
        """A loaded bundle as a trained tagger (no history)."""
        return cls(model=bundle.model, space=bundle.space, vocab=bundle.vocab,
                   thresholds=bundle.thresholds, config=bundle.config, history={},
                   linear=bundle.linear, fusion=bundle.fusion,
                   backend_thresholds=bundle.backend_thresholds,
                   feature_columns=bundle.feature_columns, text_columns=bundle.text_columns,
                   embedding=bundle.embedding, photo=bundle.photo)


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
    if getattr(config, "text_embeddings", ""):
        from tag_pipeline.lib.models.embeddings import load_encoder

        load_encoder(config.text_embeddings, "TaggerConfig.text_embeddings")  # fail fast
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
        photo_inputs = None
        if getattr(config, "fuse_linear", True) and getattr(config, "photo_colour", True):
            started = time.perf_counter()
            photo_inputs = (photo_histograms(train_images), photo_histograms(val_images),
                            time.perf_counter() - started)
    y_val = features.targets["val"]
    cnn_thresholds = tune_thresholds(val_scores, y_val, space)
    if not getattr(config, "fuse_linear", True):
        return TrainedTagger(model=model, space=space, vocab=vocab, thresholds=cnn_thresholds,
                             config=config, history=history, epoch_seconds=epoch_seconds,
                             feature_columns=features.feature_columns,
                             text_columns=features.text_columns())
    started = time.perf_counter()
    linear = train_linear(features, seed=config.seed, c=config.linear_c,
                          crosses=getattr(config, "linear_crosses", True),
                          nb=getattr(config, "linear_nb", True))
    linear_val = baseline_scores(linear, val)
    linear_seconds = time.perf_counter() - started
    backends = {CNN: val_scores, LINEAR: linear_val}
    backend_thresholds = {CNN: cnn_thresholds,
                          LINEAR: tune_thresholds(linear_val, y_val, space)}
    embedding, embedding_seconds, embedding_stats = None, 0.0, None
    encoder = getattr(config, "text_embeddings", "")
    if encoder:
        from tag_pipeline.lib.models.embeddings import EncodeStats

        embedding_stats = EncodeStats()
        started = time.perf_counter()
        embedding = train_embeddings(features, encoder, seed=config.seed,
                                     stats=embedding_stats)
        backends[EMBEDDING] = embedding.product_scores(val, embedding_stats)
        backend_thresholds[EMBEDDING] = tune_thresholds(backends[EMBEDDING], y_val, space)
        embedding_seconds = time.perf_counter() - started
    photo, photo_seconds, val_photo = None, 0.0, None
    if photo_inputs is not None and photo_inputs[0][1].any():
        from tag_pipeline.lib.models.photo_colour import train_photo_colour

        (train_hist, train_photo), (val_hist, val_photo), photo_seconds = photo_inputs
        started = time.perf_counter()
        photo = train_photo_colour(train_hist, train_photo, features.targets["train"], space,
                                   seed=config.seed)
        if photo is not None:
            backends[PHOTO] = photo.histogram_scores(val_hist, np.flatnonzero(val_photo))
            backend_thresholds[PHOTO] = tune_thresholds(backends[PHOTO], y_val, space)
        photo_seconds += time.perf_counter() - started
    fusion = tune_fusion(backends, y_val, space, macro_weight=config.fusion_macro_weight,
                         has_photo=val_photo)
    thresholds = tune_thresholds(fuse(fusion, backends, space, val_photo), y_val, space)
    return TrainedTagger(model=model, space=space, vocab=vocab, thresholds=thresholds,
                         config=config, history=history, epoch_seconds=epoch_seconds,
                         linear=linear, fusion=fusion, backend_thresholds=backend_thresholds,
                         feature_columns=features.feature_columns,
                         linear_seconds=linear_seconds, text_columns=features.text_columns(),
                         embedding=embedding, embedding_seconds=embedding_seconds,
                         embedding_stats=embedding_stats, photo=photo,
                         photo_seconds=photo_seconds)


def photo_histograms(images) -> tuple[np.ndarray, np.ndarray]:
    """The ``photo_colour.colour_histograms`` of decoded images (``images.DecodedImages``), a
    row per product (zeros without a photo), and whether each product's photo decoded."""
    from tag_pipeline.lib.models.photo_colour import N_FEATURES, colour_histograms

    has = images.slots >= 0
    out = np.zeros((len(images.slots), N_FEATURES), np.float32)
    rows = np.flatnonzero(has)
    for start in range(0, len(rows), 1024):
        chunk = rows[start:start + 1024]
        out[chunk] = colour_histograms(images.batch(images.slots[chunk]))
    return out, has


def train_embeddings(features: FeatureSet, encoder: str, seed: int = 42,
                     stats: object | None = None):
    """The embedding backend (``embeddings.EmbeddingBackend``) fitted on the training split's
    text vectors (read from, or written to, the project's embedding cache; ``stats``, an
    ``embeddings.EncodeStats``, counts them)."""
    from tag_pipeline.lib.models.embeddings import (
        default_cache,
        embedding_texts,
        encode,
        train_embedding_backend,
    )

    train = features.split("train")
    vectors = encode(embedding_texts(train), encoder, default_cache(), stats)
    return train_embedding_backend(vectors, features.targets["train"], features.space, encoder,
                                   seed=seed)


def train_linear(features: FeatureSet, seed: int = 42, c: float = 0.5,
                 crosses: bool = False, nb: bool = False) -> BaselineTagger:
    """The linear n-gram model fit on the training split and calibrated on validation (the
    fused tagger's linear backend, with ``crosses`` of feature and title words and ``nb``
    NB-SVM candidates; and the baseline, without either: the same recipe, trained apart)."""
    model = train_baseline(features.split("train"), features.targets["train"], features.space,
                           seed=seed, c=c, crosses=crosses, nb=nb)
    return calibrate(model, features.split("val"), features.targets["val"])


def _accuracy(truth: dict[str, np.ndarray], preds: dict[str, np.ndarray],
              heads: list, space: LabelSpace) -> float:
    """Share of (product, single-valued facet) cells with a known value whose given tags
    include that value (no tag given counts as wrong); NaN when no cell is known. The cells
    are ``comparison.product_counts``', which the bootstrap of the margins resamples."""
    if not heads:
        return float("nan")
    return float(metric_of(product_counts(truth, preds, space, heads).sum(axis=0), "accuracy"))


def metrics_by_scope(truth: dict[str, np.ndarray], scores: dict[str, np.ndarray],
                     thresholds: dict[str, np.ndarray], space: LabelSpace,
                     rows: np.ndarray | None = None, hierarchical: bool = True,
                     decisions: dict[str, np.ndarray] | None = None
                     ) -> dict[str, dict[str, float]]:
    """Metrics overall ('all'), per tag type ('type:<t>') and per head ('head:<h>').

    Every scope also has ``accuracy`` over its single-valued (softmax) facets, NaN where it
    has none. ``hierarchical`` decodes category levels jointly (``scoring.apply_thresholds``).
    ``decisions`` (0/1 per head, e.g. ``serving.product_decisions``) replace the scores
    through ``thresholds``; the ranking metrics still read ``scores``.
    """
    if rows is not None:
        truth = {k: v[rows] for k, v in truth.items()}
        scores = {k: v[rows] for k, v in scores.items()}
        decisions = None if decisions is None else {k: v[rows] for k, v in decisions.items()}
    preds = (apply_thresholds(scores, thresholds, space, hierarchical=hierarchical)
             if decisions is None else decisions)
    per_head = evaluate_heads(truth, preds, scores, space)
    softmax = [h for h in space.heads if h.kind == SOFTMAX]
    out = {"all": {**per_head.pop("all"), "accuracy": _accuracy(truth, preds, softmax, space)}}
    for head in space.heads:
        out[f"head:{head.name}"] = {**per_head[head.name],
                                    "accuracy": _accuracy(truth, preds, [head], space)
                                    if head.kind == SOFTMAX else float("nan")}
    for tag_type in sorted({h.tag_type for h in space.heads}):
        sub = dataclasses.replace(space, heads=tuple(h for h in space.heads
                                                     if h.tag_type == tag_type))
        out[f"type:{tag_type}"] = {
            **evaluate_heads(truth, preds, scores, sub)["all"],
            "accuracy": _accuracy(truth, preds, [h for h in sub.heads if h.kind == SOFTMAX],
                                  space)}
    return out


# The tagger as served, and the parts of its ablation (each a row of the evaluation table).
TAGGER = "tagger"
BASELINE = "baseline"
TAGGER_FLAT = "tagger_flat"  # the fused tagger without joint hierarchy decoding
TAGGER_NO_PHOTO = "tagger_no_photo"  # the fused tagger without the photo-colour backend


def without_photo(fusion: Fusion) -> Fusion:
    """The fusion with every head's photo-colour weight set to 0 (the ablation's row)."""
    return dataclasses.replace(fusion, heads={
        name: dataclasses.replace(h, photo_weight=0.0) for name, h in fusion.heads.items()})


@dataclass
class Evaluation:
    """Test-split metrics of the tagger, the parts of its ablation and the baseline, on all
    products and on the image subset: ``results[model][subset][scope][metric]``."""

    results: dict[str, dict[str, dict[str, dict[str, float]]]]
    n_test: int
    n_test_images: int
    baseline_seconds: float
    # tagger - baseline on all test products, per metric that adds up over products
    # (micro_f1, accuracy), with its paired bootstrap interval (``comparison``)
    baseline_difference: dict[str, Difference] = field(default_factory=dict)
    # the same per head (head name -> difference): accuracy of a single-valued facet,
    # micro-F1 of a multi-valued one
    head_difference: dict[str, Difference] = field(default_factory=dict)

    def margin_table(self) -> pl.DataFrame:
        """Tagger - baseline with its paired bootstrap interval: overall per metric, then per
        head (accuracy of a single-valued facet, micro-F1 of a multi-valued one)."""
        rows = [("all", d) for d in self.baseline_difference.values()]
        rows += [(f"head:{name}", d) for name, d in self.head_difference.items()]
        return pl.DataFrame(
            [{"scope": scope, "metric": d.metric, "tagger - baseline": round(d.difference, 4),
              "low": round(d.low, 4), "high": round(d.high, 4)} for scope, d in rows],
            schema={"scope": pl.String, "metric": pl.String, "tagger - baseline": pl.Float64,
                    "low": pl.Float64, "high": pl.Float64})

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

    def facet_table(self, subset: str = "all") -> pl.DataFrame:
        """Per scope (overall, tag type, head): accuracy, micro-F1 and macro-F1 of every
        model side by side, the tagger first and the baseline last."""
        models = [m for m in self.results if subset in self.results[m]]
        ordered = ([TAGGER] + [m for m in models if m not in (TAGGER, BASELINE)]
                   + [BASELINE])
        scopes = list(self.results[TAGGER][subset])
        rows = []
        for scope in scopes:
            row: dict[str, object] = {"scope": scope}
            for metric, short in (("accuracy", "acc"), ("micro_f1", "micro"),
                                  ("macro_f1", "macro")):
                for model in ordered:
                    if model in models:
                        value = self.results[model][subset][scope].get(metric, float("nan"))
                        row[f"{short} {model}"] = round(float(value), 4)
            rows.append(row)
        return pl.DataFrame(rows)


def backend_test_scores(trained: TrainedTagger, products: pl.DataFrame
                        ) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray | None]:
    """``{backend: {head: scores}}`` of products: the CNN + BiLSTM's, and for a fused tagger
    the linear backend's (and the embedding and photo-colour backends' where it has them);
    and, with the photo-colour backend, per product whether its image decoded (else None)."""
    out = {CNN: score_products(trained, products)}
    if trained.linear is not None:
        out[LINEAR] = baseline_scores(trained.linear, products)
    if trained.embedding is not None:
        out[EMBEDDING] = trained.embedding.product_scores(products)
    if trained.photo is None:
        return out, None
    from tag_pipeline.lib.models.images import DecodedImages

    with tempfile.TemporaryDirectory(prefix="tag_pipeline_images_") as folder:
        images = DecodedImages(products["image_path"].to_list(), trained.config.image_size,
                               folder)
        histograms, has = photo_histograms(images)
    out[PHOTO] = trained.photo.histogram_scores(histograms, np.flatnonzero(has))
    return out, has


def tagger_scores_of(trained: TrainedTagger, backends: dict[str, dict[str, np.ndarray]],
                     has_photo: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The tagger's scores from its backends' (fused when it has a fusion)."""
    if trained.fusion is None:
        return backends[CNN]
    return fuse(trained.fusion, backends, trained.space, has_photo)


def baseline_margins(truth: dict[str, np.ndarray], tagger: dict[str, np.ndarray],
                     baseline: dict[str, np.ndarray], space: LabelSpace
                     ) -> tuple[dict[str, Difference], dict[str, Difference]]:
    """How sure "the tagger beats the baseline" is, from both models' 0/1 decisions on the
    same test products: tagger - baseline with its paired bootstrap interval, overall per
    metric that adds up over products (micro-F1, accuracy), and per head (accuracy for a
    single-valued facet, micro-F1 for a multi-valued one). A metric undefined on the catalog
    (accuracy without single-valued facets) is left out."""

    def head_metric(head: Head) -> str:
        return "accuracy" if head.kind == SOFTMAX else "micro_f1"

    per_head = {h.name: (product_counts(truth, tagger, space, heads=[h]),
                         product_counts(truth, baseline, space, heads=[h]))
                for h in space.heads}
    tagger_counts = sum(t for t, _ in per_head.values())
    baseline_counts = sum(b for _, b in per_head.values())
    # one set of resamples for every figure
    margins = paired_differences({
        **{("all", m): (tagger_counts, baseline_counts, m) for m in COMPARED_METRICS},
        **{(h.name, head_metric(h)): (*per_head[h.name], head_metric(h))
           for h in space.heads}})
    margins = {key: d for key, d in margins.items() if not np.isnan(d.difference)}
    return ({m: d for (scope, m), d in margins.items() if scope == "all"},
            {scope: d for (scope, _), d in margins.items() if scope != "all"})


def evaluate_on_test(trained: TrainedTagger, features: FeatureSet,
                     baseline_seed: int = 42, baseline_c: float = 0.5) -> Evaluation:
    """Score the tagger, each of its backends alone and the baseline on the test split.

    The baseline (TF-IDF word 1-2 + char_wb 2-5 grams, LinearSVCs) is trained here on the same
    training split and reads the same inputs; its calibration and thresholds are tuned on the
    validation split, so every model is scored by the same rules. The baseline's categories
    are decoded level by level (it has no taxonomy); the tagger's jointly, and the row
    ``tagger_flat`` shows the fused tagger decoded level by level.
    """
    test = features.split("test")
    if test.is_empty():
        raise ValueError("the test split is empty: too few products to evaluate")
    truth = features.targets["test"]
    space = features.space
    backends, has_photo = backend_test_scores(trained, test)
    tagger_scores = tagger_scores_of(trained, backends, has_photo)
    started = time.perf_counter()
    baseline = train_linear(features, seed=baseline_seed, c=baseline_c)
    baseline_thresholds = tune_thresholds(baseline_scores(baseline, features.split("val")),
                                          features.targets["val"], space)
    baseline_test = baseline_scores(baseline, test)
    baseline_seconds = time.perf_counter() - started
    with_image = test["image_path"].is_not_null().to_numpy()
    # (model, scores, thresholds, hierarchical)
    models = [(TAGGER, tagger_scores, trained.thresholds, True)]
    if trained.fusion is not None:
        models.append((TAGGER_FLAT, tagger_scores, trained.thresholds, False))
        if trained.fusion.photo_heads:
            # the ablation of the photo-colour backend: the fusion without it
            models.append((TAGGER_NO_PHOTO, tagger_scores_of(
                dataclasses.replace(trained, fusion=without_photo(trained.fusion)), backends),
                trained.thresholds, True))
        for backend in (CNN, LINEAR, EMBEDDING, PHOTO):
            if backend in trained.backend_thresholds and backend in backends:
                models.append((backend, backends[backend], trained.backend_thresholds[backend],
                               False))
    models.append((BASELINE, baseline_test, baseline_thresholds, False))
    difference, head_difference = baseline_margins(
        truth, apply_thresholds(tagger_scores, trained.thresholds, space),
        apply_thresholds(baseline_test, baseline_thresholds, space, hierarchical=False), space)
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for name, scores, thresholds, hierarchical in models:
        # the photo-colour backend scores photographed products only
        if name != PHOTO:
            results[name] = {"all": metrics_by_scope(truth, scores, thresholds, space,
                                                     hierarchical=hierarchical)}
        # A text-only catalog has no image subset: report none rather than a made-up number.
        if with_image.any():
            results.setdefault(name, {})["images"] = metrics_by_scope(
                truth, scores, thresholds, space, with_image, hierarchical=hierarchical)
    return Evaluation(results=results, n_test=test.height,
                      n_test_images=int(with_image.sum()), baseline_seconds=baseline_seconds,
                      baseline_difference=difference, head_difference=head_difference)


def score_products(trained: TrainedTagger, products: pl.DataFrame,
                   batch_size: int = 512) -> dict[str, np.ndarray]:
    """CNN + BiLSTM scores per head for products (title, description, image_path, feature
    words), in frame order."""
    from tag_pipeline.lib.models.dataset import make_dataset
    from tag_pipeline.lib.models.tagger import predict_scores
    from tag_pipeline.lib.models.text import make_tokenizer

    tokenizer = make_tokenizer(trained.vocab, trained.config.seq_len)
    dataset = make_dataset(products, None, tokenizer, image_size=trained.config.image_size,
                           batch_size=batch_size)
    return predict_scores(trained.model, dataset, trained.space)
