"""``tf.data`` input of the tagger: tokens, streamed images and per-head targets and weights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import tensorflow as tf

from tag_pipeline.lib.models.images import make_image_loader
from tag_pipeline.lib.models.labels import output_name
from tag_pipeline.lib.models.text import product_texts

if TYPE_CHECKING:
    import keras_hub


def make_dataset(products: pl.DataFrame,
                 encoded_labels: Mapping[str, np.ndarray] | None,
                 tokenizer: keras_hub.tokenizers.WordPieceTokenizer,
                 image_size: int = 64,
                 batch_size: int = 64,
                 shuffle: bool = False,
                 seed: int = 42,
                 sample_weights: Mapping[str, np.ndarray] | None = None) -> tf.data.Dataset:
    """Batches of model inputs, with targets and weights when labels are given.

    Only strings, paths and label arrays are held in memory; images are read from disk by the
    pipeline, batch by batch.

    Args:
        products: Frame with title, description and image_path (null = no image), in the row
            order of the label arrays.
        encoded_labels: Targets per head name (``encode_labels``), or None for inference.
        tokenizer: The WordPiece tokenizer (``make_tokenizer``).
        image_size: Side of the square image input.
        batch_size: Products per batch.
        shuffle: Reshuffle the products every epoch (for training).
        seed: Shuffle seed.
        sample_weights: Weights per head name (``sample_weights``); required with labels.

    Returns:
        A dataset of ``({"tokens", "image", "image_mask"}, {output: y}, {output: weight})``,
        or of the input dict alone when ``encoded_labels`` is None. Outputs are keyed by the
        Keras-safe head names (``Head.output_name``).
    """
    if "image_path" not in products.columns:
        raise ValueError(f"products frame lacks column 'image_path'; has {products.columns}")
    n = products.height
    columns: dict[str, object] = {
        "text": np.array(product_texts(products), dtype=object),
        "image_path": np.array(products["image_path"].fill_null("").to_list(), dtype=object),
    }
    if encoded_labels is not None:
        if sample_weights is None:
            raise ValueError("make_dataset got labels without sample_weights; pass "
                             "labels.sample_weights(encoded, space) (softmax rows need masks)")
        for name, y in encoded_labels.items():
            if len(y) != n or len(sample_weights[name]) != n:
                raise ValueError(f"head {name!r}: {len(y)} label rows and "
                                 f"{len(sample_weights[name])} weights for {n} products")
        columns["y"] = {output_name(k): np.asarray(v, np.float32)
                        for k, v in encoded_labels.items()}
        columns["w"] = {output_name(k): np.asarray(sample_weights[k], np.float32)
                        for k in encoded_labels}

    ds = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle:
        ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    load_image = make_image_loader(image_size)

    def per_product(row: dict) -> dict:
        image, mask = load_image(row["image_path"])
        out = {"text": row["text"], "image": image, "image_mask": mask}
        if "y" in row:
            out["y"], out["w"] = row["y"], row["w"]
        return out

    def per_batch(batch: dict) -> dict | tuple:
        x = {"tokens": tokenizer(batch["text"]), "image": batch["image"],
             "image_mask": batch["image_mask"]}
        if "y" in batch:
            return x, batch["y"], batch["w"]
        return x

    ds = (ds.map(per_product, num_parallel_calls=tf.data.AUTOTUNE)
          .batch(batch_size)
          .map(per_batch, num_parallel_calls=tf.data.AUTOTUNE))
    return ds.prefetch(tf.data.AUTOTUNE)
