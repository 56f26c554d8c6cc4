"""The linear n-gram model: the strongest cheap baseline, and the fused tagger's linear backend.

Features are TF-IDF word 1-2-grams plus character 2-5-grams within word boundaries
(``char_wb``, sublinear tf); the character n-grams carry Chinese, which has no spaces between
words, and the feature columns arrive as words of the text (``text.product_texts``). A softmax
head gets a LinearSVC (one-vs-rest, ``C`` about 0.5) trained on the products whose facet value
is known; a sigmoid head gets one LinearSVC per tag (one-vs-rest). This is the bar every
tagger must beat: it trains on a real catalog in about a minute.

A LinearSVC gives margins, not probabilities. ``calibrate`` fits, on the VALIDATION split, one
temperature per softmax head (``softmax(scale * margin)``, minimum log loss) and one Platt
sigmoid per sigmoid head (``sigmoid(scale * margin + bias)``), so the scores can be fused with
the CNN + BiLSTM's and thresholded by the same rules. Calibration is monotone: the arg-max of a
softmax head, and so the accuracy of a single-valued facet, is the LinearSVC's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

from tag_pipeline.lib.models.labels import SOFTMAX, LabelSpace
from tag_pipeline.lib.models.text import product_texts

# Margin given to a softmax class the head never saw in training (it cannot win).
_UNSEEN_MARGIN = -30.0
_TEMPERATURES = np.geomspace(0.25, 64.0, 49)


@dataclass
class BaselineTagger:
    """A fitted linear model: the vectoriser, one classifier per head name, calibration."""

    space: LabelSpace
    vectorizer: FeatureUnion
    classifiers: dict[str, LinearSVC | OneVsRestClassifier]
    # heads whose training target never varies (one class, or a tag on every product) get
    # these constant scores instead of a classifier
    constant_scores: dict[str, np.ndarray]
    # head name -> (scale, bias) of its margins; absent: scale 1, bias 0 (uncalibrated)
    calibration: dict[str, tuple[float, float]] = field(default_factory=dict)
    c: float = 0.5


def make_vectorizer(min_df: int = 2, max_features: int = 400_000) -> FeatureUnion:
    """Word 1-2-gram and char_wb 2-5-gram TF-IDF (sublinear tf), side by side."""
    return FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=1,
                                 token_pattern=r"(?u)\b\w+\b", sublinear_tf=True,
                                 max_features=max_features, dtype=np.float32)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=min_df,
                                 sublinear_tf=True, max_features=max_features,
                                 dtype=np.float32)),
    ])


def _svc(c: float, seed: int) -> LinearSVC:
    return LinearSVC(C=c, random_state=seed, max_iter=5000)


def train_baseline(products: pl.DataFrame, encoded_labels: Mapping[str, np.ndarray],
                   space: LabelSpace, seed: int = 42, min_df: int = 2,
                   c: float = 0.5) -> BaselineTagger:
    """Fit the linear model on TRAINING products and their targets (``encode_labels``).

    Args:
        products: Training products (title, description, optional feature words), rows
            aligned with the targets.
        encoded_labels: Targets per head name.
        space: The label space.
        seed: Seed of the solvers.
        min_df: Fewest products a character n-gram must occur in.
        c: Inverse regularisation strength of every LinearSVC.
    """
    texts = product_texts(products)
    vectorizer = make_vectorizer(min_df=min_df)
    features = vectorizer.fit_transform(texts)
    classifiers: dict[str, LinearSVC | OneVsRestClassifier] = {}
    constant: dict[str, np.ndarray] = {}
    for head in space.heads:
        y = np.asarray(encoded_labels[head.name])
        if len(y) != len(texts):
            raise ValueError(f"head {head.name!r}: {len(y)} label rows for {len(texts)} products")
        if head.kind == SOFTMAX:
            known = y.sum(axis=1) > 0
            if not known.any():
                raise ValueError(f"head {head.name!r} has no labeled training product")
            classes = y[known].argmax(axis=1)
            if len(np.unique(classes)) == 1:
                constant[head.name] = np.eye(head.size, dtype=np.float32)[classes[0]]
                continue
            classifiers[head.name] = _svc(c, seed).fit(features[known], classes)
        elif head.size == 1:
            if len(np.unique(y[:, 0])) == 1:
                constant[head.name] = y[0].astype(np.float32)
                continue
            # a one-column target would be read by sklearn as binary, not as multi-label
            classifiers[head.name] = _svc(c, seed).fit(features, y[:, 0].astype(np.int8))
        else:
            classifiers[head.name] = OneVsRestClassifier(_svc(c, seed)).fit(
                features, y.astype(np.int8))
    return BaselineTagger(space=space, vectorizer=vectorizer, classifiers=classifiers,
                          constant_scores=constant, c=c)


def baseline_margins(model: BaselineTagger, products: pl.DataFrame) -> dict[str, np.ndarray]:
    """LinearSVC margins per head name (products x head size); constant heads give None."""
    features = model.vectorizer.transform(product_texts(products))
    n = features.shape[0]
    margins = {}
    for head in model.space.heads:
        if head.name in model.constant_scores:
            continue
        clf = model.classifiers[head.name]
        d = np.asarray(clf.decision_function(features), dtype=np.float64)
        if head.kind == SOFTMAX:
            out = np.full((n, head.size), _UNSEEN_MARGIN)
            if d.ndim == 1:  # two classes seen: sklearn gives the second class's margin
                out[:, clf.classes_[0]], out[:, clf.classes_[1]] = -d, d
            else:
                out[:, clf.classes_] = d
        else:
            out = d.reshape(n, head.size)
        margins[head.name] = out
    return margins


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))


def scores_from_margins(model: BaselineTagger, margins: Mapping[str, np.ndarray], n: int
                        ) -> dict[str, np.ndarray]:
    """Probability-like scores per head from ``baseline_margins`` (calibration applied)."""
    scores = {}
    for head in model.space.heads:
        if head.name in model.constant_scores:
            scores[head.name] = np.tile(model.constant_scores[head.name], (n, 1)).astype(
                np.float32)
            continue
        scale, bias = model.calibration.get(head.name, (1.0, 0.0))
        z = scale * margins[head.name] + bias
        scores[head.name] = (_softmax(z) if head.kind == SOFTMAX else _sigmoid(z)).astype(
            np.float32)
    return scores


def baseline_scores(model: BaselineTagger, products: pl.DataFrame) -> dict[str, np.ndarray]:
    """Scores per head name (products x head size), as ``tagger.predict_scores`` gives them."""
    return scores_from_margins(model, baseline_margins(model, products), products.height)


def calibrate(model: BaselineTagger, products: pl.DataFrame,
              targets: Mapping[str, np.ndarray]) -> BaselineTagger:
    """Fit each head's margin scale (and a sigmoid head's bias) on VALIDATION products.

    A softmax head's temperature minimises the log loss of its labeled rows over a fixed grid;
    a sigmoid head gets a Platt fit over all its cells. Returns ``model`` with its
    ``calibration`` replaced (the classifiers are unchanged).
    """
    margins = baseline_margins(model, products)
    calibration: dict[str, tuple[float, float]] = {}
    for head in model.space.heads:
        if head.name not in margins:
            continue
        m = margins[head.name]
        y = np.asarray(targets[head.name]) > 0
        if head.kind == SOFTMAX:
            known = y.any(axis=1)
            if not known.any():
                continue
            m, truth = m[known], y[known].argmax(axis=1)
            rows = np.arange(len(truth))
            losses = []
            for scale in _TEMPERATURES:
                z = scale * m
                z = z - z.max(axis=1, keepdims=True)
                log_p = z[rows, truth] - np.log(np.exp(z).sum(axis=1))
                losses.append(-log_p.mean())
            calibration[head.name] = (float(_TEMPERATURES[int(np.argmin(losses))]), 0.0)
        else:
            flat_y = y.ravel()
            if flat_y.all() or not flat_y.any():
                continue
            platt = LogisticRegression(C=1e4, max_iter=1000).fit(m.reshape(-1, 1),
                                                                 flat_y.astype(np.int8))
            calibration[head.name] = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
    model.calibration = calibration
    return model
