"""Image input of the tagger: a ``tf.data`` map from an image path to (pixels, mask).

Decoding goes through Pillow inside ``tf.numpy_function`` rather than ``tf.io.decode_image``:
an error raised by a graph op cannot be caught inside ``tf.data`` (it ends the whole
iteration), while here a missing, truncated or corrupt file simply gets mask 0. Pillow is also
what verified the images upstream, so both agree on what decodes, and its JPEG draft mode
decodes at a reduced scale when the target is small. Products without a path skip Python.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from PIL import Image

# What Pillow raises on files it cannot read (OSError covers missing files, unidentified and
# truncated images; the rest come from individual format plugins).
_UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, struct.error,
               Image.DecompressionBombError)


def read_image(path: str | bytes, image_size: int = 64) -> tuple[np.ndarray, np.float32]:
    """Pixels in [0, 1] as float32 (size, size, 3) and mask 1, or zeros and mask 0.

    The image is resized to a square without keeping its aspect ratio (the CNN sees the
    whole product either way).
    """
    if isinstance(path, bytes):
        path = path.decode("utf-8")
    if not path:
        return np.zeros((image_size, image_size, 3), np.float32), np.float32(0.0)
    try:
        with Image.open(path) as img:
            img.draft("RGB", (image_size, image_size))
            rgb = img.convert("RGB").resize((image_size, image_size),
                                            Image.Resampling.BILINEAR)
            pixels = np.asarray(rgb, dtype=np.float32) / 255.0
    except _UNREADABLE:
        return np.zeros((image_size, image_size, 3), np.float32), np.float32(0.0)
    return pixels, np.float32(1.0)


def make_image_loader(image_size: int = 64) -> Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """A function for ``Dataset.map``: scalar path string -> (image, mask of shape (1,)).

    An empty path gives zeros and mask 0 without leaving the graph; any other path is read by
    ``read_image``.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be at least 1, got {image_size}")
    shape = (image_size, image_size, 3)

    def _py_read(path: bytes) -> tuple[np.ndarray, np.float32]:
        return read_image(path, image_size)

    def _read(path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image, mask = tf.numpy_function(_py_read, [path], [tf.float32, tf.float32],
                                        stateful=False)
        return image, mask

    def _empty() -> tuple[tf.Tensor, tf.Tensor]:
        return tf.zeros(shape, tf.float32), tf.constant(0.0, tf.float32)

    def load(path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image, mask = tf.cond(tf.strings.length(path) > 0, lambda: _read(path), _empty)
        image = tf.ensure_shape(image, shape)
        return image, tf.reshape(mask, (1,))

    return load
