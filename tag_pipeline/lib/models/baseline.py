"""A text-only baseline: TF-IDF n-grams and a linear classifier per head (sklearn only).

Features are word 1-2-grams plus character 1-3-grams within word boundaries (``char_wb``);
the character n-grams carry Chinese, which has no spaces between words. A softmax head gets a
multinomial logistic regression trained on the products whose facet value is known; a sigmoid
head gets one binary logistic regression per tag (one-vs-rest). Both use
``class_weight="balanced"`` because the decisions come from thresholds tuned on validation
anyway. Scores come out per head in the tagger's shapes, so ``scoring`` and ``metrics`` apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion

from tag_pipeline.lib.models.labels import SOFTMAX, LabelSpace
from tag_pipeline.lib.models.text import product_texts


@dataclass
class BaselineTagger:
    """A fitted baseline: the vectoriser and one classifier per head name."""

    space: LabelSpace
    vectorizer: FeatureUnion
    classifiers: dict[str, LogisticRegression | OneVsRestClassifier]
    # heads whose training target never varies (one class, or a tag on every product) get
    # these constant scores instead of a classifier
    constant_scores: dict[str, np.ndarray]


def make_vectorizer(min_df: int = 2, max_features: int = 200_000) -> FeatureUnion:
    """Word 1-2-gram and char_wb 1-3-gram TF-IDF (sublinear tf), side by side."""
    return FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=min_df,
                                 token_pattern=r"(?u)\b\w+\b", sublinear_tf=True,
                                 max_features=max_features, dtype=np.float32)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=min_df,
                                 sublinear_tf=True, max_features=max_features,
                                 dtype=np.float32)),
    ])


def train_baseline(products: pl.DataFrame, encoded_labels: Mapping[str, np.ndarray],
                   space: LabelSpace, seed: int = 42, min_df: int = 2,
                   c: float = 4.0) -> BaselineTagger:
    """Fit the baseline on TRAINING products and their targets (``encode_labels``).

    Args:
        products: Training products (title, description), rows aligned with the targets.
        encoded_labels: Targets per head name.
        space: The label space.
        seed: Seed of the solvers.
        min_df: Fewest products an n-gram must occur in.
        c: Inverse regularisation strength of every logistic regression.
    """
    texts = product_texts(products)
    vectorizer = make_vectorizer(min_df=min_df)
    features = vectorizer.fit_transform(texts)
    classifiers: dict[str, LogisticRegression | OneVsRestClassifier] = {}
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
            clf = LogisticRegression(C=c, class_weight="balanced", max_iter=1000,
                                     random_state=seed)
            classifiers[head.name] = clf.fit(features[known], classes)
        elif head.size == 1:
            if len(np.unique(y[:, 0])) == 1:
                constant[head.name] = y[0].astype(np.float32)
                continue
            # a one-column target would be read by sklearn as binary, not as multi-label
            clf = LogisticRegression(C=c, class_weight="balanced", solver="liblinear",
                                     random_state=seed)
            classifiers[head.name] = clf.fit(features, y[:, 0].astype(np.int8))
        else:
            clf = OneVsRestClassifier(LogisticRegression(
                C=c, class_weight="balanced", solver="liblinear", random_state=seed))
            classifiers[head.name] = clf.fit(features, y.astype(np.int8))
    return BaselineTagger(space=space, vectorizer=vectorizer, classifiers=classifiers,
                          constant_scores=constant)


def baseline_scores(model: BaselineTagger, products: pl.DataFrame) -> dict[str, np.ndarray]:
    """Scores per head name (products x head size), as ``tagger.predict_scores`` gives them."""
    features = model.vectorizer.transform(product_texts(products))
    n = features.shape[0]
    scores = {}
    for head in model.space.heads:
        out = np.zeros((n, head.size), dtype=np.float32)
        if head.name in model.constant_scores:
            out[:] = model.constant_scores[head.name]
        elif head.kind == SOFTMAX:
            clf = model.classifiers[head.name]
            # columns follow clf.classes_, the class indices seen in training
            out[:, clf.classes_] = clf.predict_proba(features)
        elif head.size == 1:
            out[:, 0] = model.classifiers[head.name].predict_proba(features)[:, 1]
        else:
            out[:] = model.classifiers[head.name].predict_proba(features)
        scores[head.name] = out
    return scores
