"""``tf.data`` input of the tagger: tokens, streamed images and per-head targets and weights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import tensorflow as tf

from tag_pipeline.lib.models.images import DecodedImages, make_image_loader
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
                 sample_weights: Mapping[str, np.ndarray] | None = None,
                 images: DecodedImages | None = None) -> tf.data.Dataset:
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
        images: The products' images decoded once (``DecodedImages`` of their image paths, in
            frame order), for a dataset read many times (training epochs); batches then
            gather pixels from it instead of decoding every image on every pass. The arrays
            are the same either way.

    Returns:
        A dataset of ``({"tokens", "image", "image_mask"}, {output: y}, {output: weight})``,
        or of the input dict alone when ``encoded_labels`` is None. Outputs are keyed by the
        Keras-safe head names (``Head.output_name``).
    """
    if "image_path" not in products.columns:
        raise ValueError(f"products frame lacks column 'image_path'; has {products.columns}")
    n = products.height
    columns: dict[str, object] = {"text": np.array(product_texts(products), dtype=object)}
    if images is None:
        columns["image_path"] = np.array(products["image_path"].fill_null("").to_list(),
                                         dtype=object)
    else:
        if len(images.slots) != n or images.image_size != image_size:
            raise ValueError(f"decoded images are for {len(images.slots)} products of size "
                             f"{images.image_size}; the frame has {n} products, size "
                             f"{image_size}")
        columns["slot"] = images.slots
        columns["image_mask"] = images.mask
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
    shape = (image_size, image_size, 3)

    def per_product(row: dict) -> dict:
        image, mask = load_image(row["image_path"])
        return {**{k: v for k, v in row.items() if k != "image_path"},
                "image": image, "image_mask": mask}

    def gather(slots: tf.Tensor) -> tf.Tensor:
        pixels = tf.numpy_function(images.batch, [slots], tf.float32, stateful=False)
        return tf.ensure_shape(pixels, (None, *shape))

    def per_batch(batch: dict) -> dict | tuple:
        image = batch["image"] if images is None else gather(batch["slot"])
        x = {"tokens": tokenizer(batch["text"]), "image": image,
             "image_mask": batch["image_mask"]}
        if "y" in batch:
            return x, batch["y"], batch["w"]
        return x

    if images is None:
        ds = ds.map(per_product, num_parallel_calls=tf.data.AUTOTUNE)
    ds = (ds.batch(batch_size)
          .map(per_batch, num_parallel_calls=tf.data.AUTOTUNE))
    return ds.prefetch(tf.data.AUTOTUNE)
