"""The linear n-gram model: the strongest cheap baseline, and the fused tagger's linear backend.

Features are TF-IDF word 1-2-grams plus character 2-5-grams within word boundaries
(``char_wb``, sublinear tf); the feature columns arrive as words of the text
(``text.product_texts``). Chinese (and Japanese and Korean) has no spaces between words, so the
word analyzer reads each CJK character as a word (``words_of``): its 1-2-grams are then the
character unigrams and bigrams a Chinese text classifier is built on. Without that, a whole
Chinese clause was one "word" and only the ``char_wb`` n-grams (no unigrams, capped at
``max_features``) carried it: cn_reviews category accuracy 0.8852 against 0.9023 with it. A softmax
head gets a LinearSVC (one-vs-rest, ``C`` about 0.5) trained on the products whose facet value
is known; a sigmoid head gets one LinearSVC per tag (one-vs-rest). This is the bar every
tagger must beat: it trains on a real catalog in about a minute.

The fused tagger's linear backend may add **feature crosses** (``crosses=True``): one token per
pair of a catalog feature word and a title word (``year_2011*puma``), TF-IDF weighted and
scaled by ``cross_weight``. A linear model cannot learn from the words alone that a brand's
2011 line was a fall collection and its 2012 line a summer one; the crossed token can. The
baseline itself never has them: it is the plain recipe a user gets in a minute.

A two-class softmax head of the fused tagger's linear backend may also get an **NB-SVM**
(``nb=True``; Wang and Manning 2012, the strong linear baseline of sentiment classification):
the same n-gram columns scaled by their naive-Bayes log-count ratio between the two classes
(how much more often a column occurs in one class's products than in the other's), then a
LinearSVC. Sentiment hangs on a few polar words ("差", "退货", "不错"), which the ratio weighs
up. ``calibrate`` keeps it, per head, only where it beats the head's other classifier on
validation by more than one product's worth. The baseline never has it.

A LinearSVC gives margins, not probabilities. ``calibrate`` fits, on the VALIDATION split, one
temperature per softmax head (``softmax(scale * margin)``, minimum log loss) and one Platt
sigmoid per sigmoid head (``sigmoid(scale * margin + bias)``), so the scores can be fused with
the CNN + BiLSTM's and thresholded by the same rules. Calibration is monotone: the arg-max of a
softmax head, and so the accuracy of a single-valued facet, is the LinearSVC's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

from tag_pipeline.lib.models.catalog_features import FEATURE_TEXT_COLUMN
from tag_pipeline.lib.models.fusion import sigmoid_objective, softmax_objective
from tag_pipeline.lib.models.labels import SOFTMAX, Head, LabelSpace
from tag_pipeline.lib.models.text import product_texts

# Margin given to a softmax class the head never saw in training (it cannot win).
_UNSEEN_MARGIN = -30.0
_TEMPERATURES = np.geomspace(0.25, 64.0, 49)
_TITLE_WORD = re.compile(r"\w+")
# one CJK character (unified ideographs and their extensions A and compatibility, kana, hangul)
_CJK_CHAR = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af])")
CROSS_WEIGHT = 0.5
# weight of macro-F1 beside accuracy when a softmax head chooses between its classifiers
SELECTION_MACRO_WEIGHT = 0.5
NB_ALPHA = 1.0  # the naive-Bayes ratio's smoothing count


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
    # feature x title-word crosses (None: none), their columns scaled by cross_weight, and
    # the heads scored on n-grams plus crosses (``calibrate`` keeps those that gain)
    cross_vectorizer: TfidfVectorizer | None = None
    cross_weight: float = CROSS_WEIGHT
    cross_classifiers: dict[str, LinearSVC | OneVsRestClassifier] = field(default_factory=dict)
    # head -> validation objective (plain, crossed), as calibrate compared them
    cross_selection: dict[str, tuple[float, float]] = field(default_factory=dict)
    # two-class softmax heads scored by an NB-SVM: head -> (log-count ratio per n-gram
    # column, LinearSVC on the scaled columns); ``calibrate`` keeps those that gain
    nb_classifiers: dict[str, tuple[np.ndarray, LinearSVC]] = field(default_factory=dict)
    # head -> validation objective (the head's other classifier, NB-SVM)
    nb_selection: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __setstate__(self, state: dict) -> None:
        # bundles saved before the crosses or the NB-SVMs existed load as models without them
        self.__dict__.update({"cross_vectorizer": None, "cross_weight": CROSS_WEIGHT,
                              "cross_classifiers": {}, "cross_selection": {},
                              "nb_classifiers": {}, "nb_selection": {}, **state})


def words_of(text: str) -> str:
    """The word analyzer's view of a text: lower case, each CJK character a word of its own
    (``"Nike运动鞋"`` -> ``"nike 运  动  鞋 "``)."""
    return _CJK_CHAR.sub(r" \1 ", text.lower())


def make_vectorizer(min_df: int = 2, max_features: int = 400_000) -> FeatureUnion:
    """Word 1-2-gram (a CJK character is a word, ``words_of``) and char_wb 2-5-gram TF-IDF
    (sublinear tf), side by side."""
    return FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=1,
                                 token_pattern=r"(?u)\b\w+\b", preprocessor=words_of,
                                 sublinear_tf=True, max_features=max_features,
                                 dtype=np.float32)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=min_df,
                                 sublinear_tf=True, max_features=max_features,
                                 dtype=np.float32)),
    ])


def cross_texts(products: pl.DataFrame) -> list[str]:
    """Per product, its feature x title-word crosses as space-separated tokens
    (``year_2011*puma year_2011*men ...``); '' where it has no feature words or no title."""
    if FEATURE_TEXT_COLUMN not in products.columns:
        return [""] * products.height
    out = []
    for title, words in zip(products["title"].fill_null("").to_list(),
                            products[FEATURE_TEXT_COLUMN].fill_null("").to_list(), strict=True):
        title_words = sorted(set(_TITLE_WORD.findall(title.lower())))
        out.append(" ".join(f"{f}*{w}" for f in words.split() for w in title_words))
    return out


def make_cross_vectorizer() -> TfidfVectorizer:
    """TF-IDF over cross tokens (a token is a whole ``feature*word`` pair; seen twice or more)."""
    return TfidfVectorizer(analyzer="word", token_pattern=r"\S+", lowercase=False, min_df=2,
                           sublinear_tf=True, dtype=np.float32)


def _svc(c: float, seed: int) -> LinearSVC:
    return LinearSVC(C=c, random_state=seed, max_iter=5000)


def fit_heads(features: sp.csr_matrix | np.ndarray, encoded_labels: Mapping[str, np.ndarray],
              space: LabelSpace, make_estimator: Callable[[], Any]
              ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One classifier per head on ``features`` (rows: products), each a new
    ``make_estimator()``: on the labeled products of a softmax head, on one column of a
    one-tag sigmoid head, one-vs-rest on a sigmoid head's tags; constant scores for heads
    that never vary. The linear backend fits LinearSVCs with it, the embedding backend
    logistic regressions."""
    classifiers: dict[str, Any] = {}
    constant: dict[str, np.ndarray] = {}
    for head in space.heads:
        y = np.asarray(encoded_labels[head.name])
        if len(y) != features.shape[0]:
            raise ValueError(f"head {head.name!r}: {len(y)} label rows for "
                             f"{features.shape[0]} products")
        if head.kind == SOFTMAX:
            known = y.sum(axis=1) > 0
            if not known.any():
                raise ValueError(f"head {head.name!r} has no labeled training product")
            classes = y[known].argmax(axis=1)
            if len(np.unique(classes)) == 1:
                constant[head.name] = np.eye(head.size, dtype=np.float32)[classes[0]]
                continue
            classifiers[head.name] = make_estimator().fit(features[known], classes)
        elif head.size == 1:
            if len(np.unique(y[:, 0])) == 1:
                constant[head.name] = y[0].astype(np.float32)
                continue
            # a one-column target would be read by sklearn as binary, not as multi-label
            classifiers[head.name] = make_estimator().fit(features, y[:, 0].astype(np.int8))
        else:
            classifiers[head.name] = OneVsRestClassifier(make_estimator()).fit(
                features, y.astype(np.int8))
    return classifiers, constant


def fit_nb_heads(features: sp.csr_matrix, encoded_labels: Mapping[str, np.ndarray],
                 space: LabelSpace, c: float, seed: int, alpha: float = NB_ALPHA
                 ) -> dict[str, tuple[np.ndarray, LinearSVC]]:
    """An NB-SVM per softmax head whose labeled training products have exactly two classes:
    the log-count ratio ``r`` of each column (binarised occurrences, smoothed by ``alpha``)
    and a LinearSVC on ``features * r``."""
    out = {}
    for head in space.heads:
        if head.kind != SOFTMAX:
            continue
        y = np.asarray(encoded_labels[head.name])
        known = y.sum(axis=1) > 0
        classes = y[known].argmax(axis=1)
        seen = np.unique(classes)
        if len(seen) != 2:
            continue
        x = features[known]
        occurs = (x > 0).astype(np.float32)
        second = classes == seen[1]
        p = np.asarray(occurs[second].sum(axis=0)).ravel() + alpha
        q = np.asarray(occurs[~second].sum(axis=0)).ravel() + alpha
        ratio = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
        out[head.name] = (ratio, _svc(c, seed).fit(x @ sp.diags(ratio), classes))
    return out


def train_baseline(products: pl.DataFrame, encoded_labels: Mapping[str, np.ndarray],
                   space: LabelSpace, seed: int = 42, min_df: int = 2,
                   c: float = 0.5, crosses: bool = False,
                   cross_weight: float = CROSS_WEIGHT, nb: bool = False) -> BaselineTagger:
    """Fit the linear model on TRAINING products and their targets (``encode_labels``).

    Args:
        products: Training products (title, description, optional feature words), rows
            aligned with the targets.
        encoded_labels: Targets per head name.
        space: The label space.
        seed: Seed of the solvers.
        min_df: Fewest products a character n-gram must occur in.
        c: Inverse regularisation strength of every LinearSVC.
        crosses: Also fit every head on the n-grams plus feature x title-word crosses (the
            fused tagger's linear backend); ``calibrate`` then keeps, per head, the crossed
            classifier only where it beats the plain one on validation. Nothing is crossed
            where no training product has a feature word.
        cross_weight: Scale of the cross columns next to the n-gram columns.
        nb: Also fit an NB-SVM for every two-class softmax head (the fused tagger's linear
            backend); ``calibrate`` keeps it only where it beats the head's other classifier.
    """
    texts = product_texts(products)
    vectorizer = make_vectorizer(min_df=min_df)
    features = vectorizer.fit_transform(texts)
    classifiers, constant = fit_heads(features, encoded_labels, space,
                                      lambda: _svc(c, seed))
    model = BaselineTagger(space=space, vectorizer=vectorizer, classifiers=classifiers,
                           constant_scores=constant, c=c, cross_weight=cross_weight)
    if nb:
        model.nb_classifiers = fit_nb_heads(features, encoded_labels, space, c, seed)
    crossed_texts = cross_texts(products) if crosses else []
    if any(crossed_texts):
        cross_vectorizer = make_cross_vectorizer()
        try:
            crossed = cross_vectorizer.fit_transform(crossed_texts)
        except ValueError:  # no cross token occurs twice: nothing to learn from
            return model
        model.cross_vectorizer = cross_vectorizer
        model.cross_classifiers, _ = fit_heads(
            sp.hstack([features, cross_weight * crossed], format="csr"), encoded_labels,
            space, lambda: _svc(c, seed))
    return model


def _margins_of(head: Head, clf: LinearSVC | OneVsRestClassifier,
                features: sp.csr_matrix) -> np.ndarray:
    n = features.shape[0]
    d = np.asarray(clf.decision_function(features), dtype=np.float64)
    if head.kind != SOFTMAX:
        return d.reshape(n, head.size)
    out = np.full((n, head.size), _UNSEEN_MARGIN)
    if d.ndim == 1:  # two classes seen: sklearn gives the second class's margin
        out[:, clf.classes_[0]], out[:, clf.classes_[1]] = -d, d
    else:
        out[:, clf.classes_] = d
    return out


def _all_margins(model: BaselineTagger, products: pl.DataFrame
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray],
                            dict[str, np.ndarray]]:
    """Margins of the plain classifiers, of the crossed ones and of the NB-SVMs, per head
    name."""
    features = model.vectorizer.transform(product_texts(products))
    plain, crossed, nb = {}, {}, {}
    if model.cross_classifiers:
        with_crosses = sp.hstack(
            [features, model.cross_weight * model.cross_vectorizer.transform(
                cross_texts(products))], format="csr")
    for head in model.space.heads:
        if head.name in model.constant_scores:
            continue
        if head.name in model.cross_classifiers:
            crossed[head.name] = _margins_of(head, model.cross_classifiers[head.name],
                                             with_crosses)
        if head.name in model.classifiers:
            plain[head.name] = _margins_of(head, model.classifiers[head.name], features)
        if head.name in model.nb_classifiers:
            ratio, clf = model.nb_classifiers[head.name]
            nb[head.name] = _margins_of(head, clf, features @ sp.diags(ratio))
    return plain, crossed, nb


def baseline_margins(model: BaselineTagger, products: pl.DataFrame) -> dict[str, np.ndarray]:
    """LinearSVC margins per head name (products x head size); constant heads give None. A
    head with an NB-SVM (``nb_classifiers``) or a crossed classifier (``cross_classifiers``)
    is scored by that one."""
    plain, crossed, nb = _all_margins(model, products)
    return {**plain, **crossed, **nb}


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


def _calibration_of(head: Head, m: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """A softmax head's temperature (least log loss over a grid), a sigmoid head's Platt
    scale and bias; None where the rows cannot tell."""
    if head.kind == SOFTMAX:
        known = y.any(axis=1)
        if not known.any():
            return None
        m, truth = m[known], y[known].argmax(axis=1)
        rows = np.arange(len(truth))
        losses = []
        for scale in _TEMPERATURES:
            z = scale * m
            z = z - z.max(axis=1, keepdims=True)
            log_p = z[rows, truth] - np.log(np.exp(z).sum(axis=1))
            losses.append(-log_p.mean())
        return float(_TEMPERATURES[int(np.argmin(losses))]), 0.0
    flat_y = y.ravel()
    if flat_y.all() or not flat_y.any():
        return None
    platt = LogisticRegression(C=1e4, max_iter=1000).fit(m.reshape(-1, 1),
                                                         flat_y.astype(np.int8))
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


def _head_objective(head: Head, m: np.ndarray, calibration: tuple[float, float] | None,
                    y: np.ndarray) -> float:
    scale, bias = calibration or (1.0, 0.0)
    z = scale * m + bias
    if head.kind == SOFTMAX:
        return softmax_objective(_softmax(z), y, SELECTION_MACRO_WEIGHT)
    return sigmoid_objective(_sigmoid(z), y)


def calibrate(model: BaselineTagger, products: pl.DataFrame,
              targets: Mapping[str, np.ndarray]) -> BaselineTagger:
    """Fit each head's margin scale (and a sigmoid head's bias) on VALIDATION products, and
    choose where crosses are used.

    A softmax head's temperature minimises the log loss of its labeled rows over a fixed grid;
    a sigmoid head gets a Platt fit over all its cells. Where the model has crossed
    classifiers (``train_baseline(crosses=True)``), both of a head's classifiers are
    calibrated and the crossed one is kept only when its validation objective (accuracy +
    0.5 macro-F1 for a softmax head, tuned micro-F1 for a sigmoid head) beats the plain one's
    by more than one product's worth; the objectives are kept in ``cross_selection``. An
    NB-SVM (``train_baseline(nb=True)``) is then kept by the same rule against the classifier
    chosen so far (``nb_selection``); where it is kept, the head's crossed classifier goes.
    Returns ``model`` with its ``calibration`` replaced.
    """
    plain, crossed, nb = _all_margins(model, products)
    calibration: dict[str, tuple[float, float]] = {}
    selection: dict[str, tuple[float, float]] = {}
    nb_selection: dict[str, tuple[float, float]] = {}
    for head in model.space.heads:
        if head.name not in plain:
            continue
        y = np.asarray(targets[head.name]) > 0
        own = _calibration_of(head, plain[head.name], y)
        if head.name in crossed:
            with_crosses = _calibration_of(head, crossed[head.name], y)
            n = max(int(y.any(axis=1).sum()) if head.kind == SOFTMAX else len(y), 1)
            scores = (_head_objective(head, plain[head.name], own, y),
                      _head_objective(head, crossed[head.name], with_crosses, y))
            selection[head.name] = scores
            if scores[1] - scores[0] > 1.0 / n:
                own = with_crosses
            else:
                del model.cross_classifiers[head.name]
        if head.name in nb:
            n = max(int(y.any(axis=1).sum()), 1)
            chosen = crossed if head.name in model.cross_classifiers else plain
            with_nb = _calibration_of(head, nb[head.name], y)
            scores = (_head_objective(head, chosen[head.name], own, y),
                      _head_objective(head, nb[head.name], with_nb, y))
            nb_selection[head.name] = scores
            if scores[1] - scores[0] > 1.0 / n:
                own = with_nb
                model.cross_classifiers.pop(head.name, None)
            else:
                del model.nb_classifiers[head.name]
        if own is not None:
            calibration[head.name] = own
    if not model.cross_classifiers:
        model.cross_vectorizer = None
    model.calibration = calibration
    model.cross_selection = selection
    model.nb_selection = nb_selection
    return model
