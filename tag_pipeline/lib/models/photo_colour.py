"""The photo-colour backend: what the colours of a product's photo say about its tags.

A product's colour is the weakest facet of a fashion catalog, and its text is often no help:
"Puma Men Slick 3HD Yellow Black Watches" names two colours, and the catalog labels one. The
CNN + BiLSTM sees the photo, but learns little colour from it, and pooled ImageNet features
barely encode colour at all (the image-backend ablation in the README: colour right on 48% of
photographed myntra products, and no gain in fusion). A colour histogram encodes nothing
else:

- every pixel of the tagger's own image input (``inputs.model_inputs``: ``image_size``
  square, [0, 1]) is quantised to 16 levels per channel; one that is not near-white
  background (some channel at or below ``WHITE``, 0.92) falls, by its cell's centre, into
  one of 12 hues x 3 saturations x 4 values (HSV saturation >= 0.15) or one of 6 grey
  levels;
- the counts are divided by the foreground pixels and square-rooted (Hellinger), plus the
  foreground's share of the photo: 151 numbers, a table lookup and one ``bincount`` per
  batch (about 0.07 ms a 64 x 64 photo; no second decode).

A multinomial logistic regression per single-valued (softmax) head reads them, fitted on the
training split's photographed products. The fusion mixes it into a head's fused scores, on
photographed products only, where validation shows a gain (``fusion.tune_fusion``, step 3);
on myntra it lifts baseColour of photographed products. Multi-valued heads get their
training prevalence (they are never mixed).

numpy and scikit-learn only: nothing here imports tensorflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from tag_pipeline.lib.models.labels import SOFTMAX, LabelSpace

N_HUE, N_SAT, N_VAL, N_GREY = 12, 3, 4, 6
N_CHROMATIC = N_HUE * N_SAT * N_VAL
N_BINS = N_CHROMATIC + N_GREY
N_FEATURES = N_BINS + 1  # the bins and the foreground's share
WHITE = 0.92  # a pixel whose every channel exceeds this is background
MIN_SATURATION = 0.15  # below: a grey pixel
# fewest photographed, labelled training products a head needs for its classifier
MIN_TRAINING_PHOTOS = 30


def colour_histograms(images: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Colour features (products, ``N_FEATURES``) of images (products, size, size, 3),
    float in [0, 1] or uint8. An all-background or empty image gives zeros."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"colour_histograms needs images of shape (products, height, width, "
                         f"3), got {images.shape}")
    out = np.zeros((len(images), N_FEATURES), np.float32)
    for start in range(0, len(images), chunk):
        out[start:start + chunk] = _histograms(images[start:start + chunk])
    return out


def _bin_of(rgb: np.ndarray) -> np.ndarray:
    """The histogram bin of each colour (rows of ``rgb`` in [0, 1]); ``N_BINS`` for
    background."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    hi, lo = rgb.max(axis=1), rgb.min(axis=1)
    delta = hi - lo
    safe = np.maximum(delta, 1e-6)
    hue = np.where(hi == r, ((g - b) / safe) % 6.0,
                   np.where(hi == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) / 6.0
    saturation = np.where(hi > 0, delta / np.maximum(hi, 1e-6), 0.0)
    foreground = lo <= WHITE
    chromatic = foreground & (saturation >= MIN_SATURATION)
    h = np.minimum((hue * N_HUE).astype(np.int64), N_HUE - 1)
    s = np.minimum(((saturation - MIN_SATURATION) / (1.0 - MIN_SATURATION) * N_SAT)
                   .astype(np.int64), N_SAT - 1)
    v = np.minimum((hi * N_VAL).astype(np.int64), N_VAL - 1)
    grey = N_CHROMATIC + np.minimum((hi * N_GREY).astype(np.int64), N_GREY - 1)
    return np.where(chromatic, (h * N_SAT + s) * N_VAL + v,
                    np.where(foreground, grey, N_BINS))


# Pixels are first quantised to LEVELS values per channel; the bin of each of the LEVELS**3
# quantised colours (at its cell's centre) is looked up, so a pixel costs a few integer
# operations instead of an HSV conversion.
LEVELS = 16
_CENTRES = (np.stack(np.meshgrid(*[np.arange(LEVELS)] * 3, indexing="ij"), axis=-1)
            .reshape(-1, 3) + 0.5) / LEVELS
_BIN_OF_CODE = _bin_of(_CENTRES).astype(np.int32)


def _histograms(images: np.ndarray) -> np.ndarray:
    n = len(images)
    if images.dtype == np.uint8:
        q = images.reshape(n, -1, 3) >> 4  # 256 / LEVELS
    else:
        q = np.clip(images.reshape(n, -1, 3) * LEVELS, 0, LEVELS - 1).astype(np.int32)
    q = q.astype(np.int32)
    bins = _BIN_OF_CODE[(q[..., 0] * LEVELS + q[..., 1]) * LEVELS + q[..., 2]]
    width = N_BINS + 1  # bin N_BINS collects the background, which is not counted
    counts = np.bincount((np.arange(n, dtype=np.int32)[:, None] * width + bins).ravel(),
                         minlength=n * width).reshape(n, width)[:, :N_BINS]
    n_foreground = counts.sum(axis=1, keepdims=True)
    hist = np.sqrt(counts / np.maximum(n_foreground, 1))
    share = n_foreground[:, 0] / max(q.shape[1], 1)
    return np.concatenate([hist, share[:, None]], axis=1).astype(np.float32)


@dataclass
class PhotoColourBackend:
    """Logistic regressions on photo colour histograms, one per softmax head it models;
    every other head (and a head with too few photographed training products) gets its
    training prevalence."""

    space: LabelSpace
    classifiers: dict[str, LogisticRegression]
    prior: dict[str, np.ndarray]  # head -> training class frequencies / tag prevalence
    n_train: int = 0  # photographed training products it learned from

    def scores(self, images: np.ndarray, has_photo: np.ndarray | None = None,
               heads: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Scores per head name (products x head size) of the products' images (the model's
        ``image`` input). Only rows with ``has_photo`` (default: all) are read; the others
        get the training prior, and the fusion never mixes them in. ``heads``: only these
        (default: every head)."""
        n = len(images)
        rows = (np.arange(n) if has_photo is None
                else np.flatnonzero(np.asarray(has_photo, bool).reshape(n)))
        x = np.zeros((n, N_FEATURES), np.float32)
        if len(rows):
            x[rows] = colour_histograms(np.asarray(images)[rows])
        return self.histogram_scores(x, rows, heads)

    def histogram_scores(self, histograms: np.ndarray, rows: np.ndarray,
                         heads: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """``scores`` from the products' ``colour_histograms``, read at ``rows`` (the
        products with a photo)."""
        n = len(histograms)
        x = histograms[rows] if len(rows) else None
        out = {}
        for head in self.space.heads:
            if heads is not None and head.name not in heads:
                continue
            p = np.tile(self.prior[head.name], (n, 1)).astype(np.float32)
            clf = self.classifiers.get(head.name)
            if clf is not None and x is not None:
                q = np.full((len(rows), head.size), 1e-6, np.float32)
                q[:, clf.classes_] = clf.predict_proba(x)
                p[rows] = q / q.sum(axis=1, keepdims=True)
            out[head.name] = p
        return out


def train_photo_colour(histograms: np.ndarray, has_photo: np.ndarray,
                       targets: Mapping[str, np.ndarray], space: LabelSpace, seed: int = 42,
                       c: float = 1.0) -> PhotoColourBackend | None:
    """Fit the backend on the TRAINING split: ``histograms`` (``colour_histograms``) and
    ``targets`` (``encode_labels``) aligned by row, ``has_photo`` true where the image
    decoded. None when no softmax head has ``MIN_TRAINING_PHOTOS`` photographed, labelled
    products of two classes or more."""
    has_photo = np.asarray(has_photo, bool)
    classifiers: dict[str, LogisticRegression] = {}
    prior: dict[str, np.ndarray] = {}
    for head in space.heads:
        y = np.asarray(targets[head.name]) > 0
        if head.kind != SOFTMAX:
            prior[head.name] = (y.mean(axis=0) if len(y) else np.zeros(head.size)).astype(
                np.float32)
            continue
        known = y.any(axis=1)
        counts = y[known].sum(axis=0).astype(np.float64) + 1e-3
        prior[head.name] = (counts / counts.sum()).astype(np.float32)
        rows = known & has_photo
        classes = y[rows].argmax(axis=1)
        if rows.sum() >= MIN_TRAINING_PHOTOS and len(np.unique(classes)) > 1:
            classifiers[head.name] = LogisticRegression(C=c, max_iter=500, random_state=seed
                                                        ).fit(histograms[rows], classes)
    if not classifiers:
        return None
    return PhotoColourBackend(space=space, classifiers=classifiers, prior=prior,
                              n_train=int(has_photo.sum()))
