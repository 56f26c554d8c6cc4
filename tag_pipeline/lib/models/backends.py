"""Stage 2 of the serving path (``serving``): each backend's scores of a batch of products.

The backends are the CNN + BiLSTM (``TaggerBundle.network``, which also gives the ``fused``
product embedding the refiner reads) and, in a fused tagger, the calibrated linear n-gram
backend (``baseline``), the embedding backend (``embeddings``) and the photo-colour backend
(``photo_colour``). The text backends read the product frame, the photo-colour backend the
image input, not the network, so ``prepare`` scores them together with the inputs: the work a
worker thread does for the next batch while the network scores this one.

Calls stage 1 (``inputs``); calls no later stage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from tag_pipeline.lib.models.baseline import baseline_scores
from tag_pipeline.lib.models.fusion import CNN, EMBEDDING, LINEAR, PHOTO
from tag_pipeline.lib.models.inputs import model_inputs, product_frame

if TYPE_CHECKING:
    from tag_pipeline.lib.models.bundle import TaggerBundle


def linear_scores(bundle: TaggerBundle, frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """The linear backend's calibrated scores of products (title, description and the feature
    words of a ``product_frame``)."""
    if bundle.linear is None:
        raise ValueError("this tagger bundle has no linear backend")
    return baseline_scores(bundle.linear, frame)


def prepare(bundle: TaggerBundle, products: pl.DataFrame) -> dict[str, Any]:
    """The model inputs of products (``inputs.model_inputs``) and, for a fused tagger, the
    text backends' scores under ``linear`` and ``embedding`` and the photo-colour backend's
    (of the heads that mix it in) under ``photo_colour``."""
    frame = product_frame(products, bundle.feature_columns)
    x: dict[str, Any] = model_inputs(bundle, frame)
    if bundle.fusion is not None:
        x[LINEAR] = linear_scores(bundle, frame)
        if bundle.embedding is not None:
            x[EMBEDDING] = bundle.embedding.product_scores(frame)
        if bundle.photo is not None and bundle.fusion.photo_heads:
            x[PHOTO] = bundle.photo.scores(x["image"], has_photo(x), bundle.fusion.photo_heads)
    return x


def has_photo(x: dict[str, Any]) -> np.ndarray:
    """Per product of prepared inputs: whether its image decoded (the image mask)."""
    return np.asarray(x["image_mask"]).reshape(-1) > 0


def backend_scores(bundle: TaggerBundle, x: dict[str, Any]
                   ) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray | None]:
    """``{backend: {head: scores}}`` for one prepared batch (``prepare``), and the network's
    ``fused`` product embeddings (None for a model without that layer).

    Raises:
        ValueError: the bundle fuses a text backend whose scores are not in ``x``.
    """
    scores, features = bundle.network(x)
    backends = {CNN: scores}
    if bundle.fusion is not None:
        names = [LINEAR]
        if bundle.embedding is not None:
            names.append(EMBEDDING)
        if bundle.photo is not None and bundle.fusion.photo_heads:
            names.append(PHOTO)
        for name in names:
            if name not in x:
                raise ValueError(f"this tagger bundle fuses the {name} backend: its scores "
                                 f"must be in the inputs (key {name!r}): build them with "
                                 "backends.prepare")
            backends[name] = x[name]
    return backends, features
