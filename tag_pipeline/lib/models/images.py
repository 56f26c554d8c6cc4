"""Image input of the tagger: a ``tf.data`` map from an image path to (pixels, mask).

Decoding goes through Pillow inside ``tf.numpy_function`` rather than ``tf.io.decode_image``:
an error raised by a graph op cannot be caught inside ``tf.data`` (it ends the whole
iteration), while here a missing, truncated or corrupt file simply gets mask 0. Pillow is also
what verified the images upstream, so both agree on what decodes, and its JPEG draft mode
decodes at a reduced scale when the target is small. Products without a path skip Python.

Training reads the same products every epoch, so it decodes their images once instead
(``DecodedImages``: uint8 pixels in a memory-mapped file, gathered batch by batch); the arrays
are the same as ``read_image``'s.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

# What Pillow raises on files it cannot read (OSError covers missing files, unidentified and
# truncated images; the rest come from individual format plugins).
_UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, struct.error,
               Image.DecompressionBombError)


def read_pixels(path: str | bytes | io.BytesIO, image_size: int = 64) -> np.ndarray | None:
    """Pixels as uint8 (size, size, 3), or None when there is no path or it does not decode.

    The image is resized to a square without keeping its aspect ratio (the CNN sees the
    whole product either way).
    """
    if isinstance(path, bytes):
        path = path.decode("utf-8")
    if not path:
        return None
    try:
        with Image.open(path) as img:
            img.draft("RGB", (image_size, image_size))
            rgb = img.convert("RGB").resize((image_size, image_size),
                                            Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except _UNREADABLE:
        return None


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1] (the model's image input)."""
    return pixels.astype(np.float32) / np.float32(255.0)


def read_image(path: str | bytes | io.BytesIO, image_size: int = 64
               ) -> tuple[np.ndarray, np.float32]:
    """Pixels in [0, 1] as float32 (size, size, 3) and mask 1, or zeros and mask 0."""
    pixels = read_pixels(path, image_size)
    if pixels is None:
        return np.zeros((image_size, image_size, 3), np.float32), np.float32(0.0)
    return to_unit(pixels), np.float32(1.0)


class DecodedImages:
    """Every image of a list of paths decoded once into a uint8 memory-mapped file.

    Training reads its products once per epoch; decoding their photos every time cost about
    as much CPU as a fifth of an epoch on the myntra catalog. The file holds one row per
    path (``None`` or unreadable paths get no row), so memory holds only the page cache and
    the row index. ``batch(slots)`` gives the float32 pixels ``read_image`` gives for those
    products.

    Args:
        paths: Image path per product (``None`` or ``""`` for none).
        image_size: Side of the square image.
        directory: Folder of the memory-mapped file (a temporary folder of the caller).
        workers: Decoding threads (Pillow releases the GIL while decoding).
    """

    def __init__(self, paths: list[str | None], image_size: int, directory: str | Path,
                 workers: int = 2) -> None:
        self.image_size = image_size
        wanted = [i for i, p in enumerate(paths) if p]
        shape = (max(len(wanted), 1), image_size, image_size, 3)
        self.file = Path(directory) / f"images_{image_size}_{id(self)}.u8"
        self._pixels = np.lib.format.open_memmap(self.file, mode="w+", dtype=np.uint8,
                                                 shape=shape)
        slots = np.full(len(paths), -1, dtype=np.int64)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            decoded = pool.map(lambda i: read_pixels(paths[i], image_size), wanted)
            for slot, (i, pixels) in enumerate(zip(wanted, decoded, strict=True)):
                if pixels is not None:
                    self._pixels[slot] = pixels
                    slots[i] = slot
        self._pixels.flush()
        self.slots = slots

    @property
    def mask(self) -> np.ndarray:
        """1.0 where the product's image decoded, else 0.0; shape (products, 1)."""
        return (self.slots >= 0).astype(np.float32)[:, None]

    def batch(self, slots: np.ndarray) -> np.ndarray:
        """float32 pixels in [0, 1] for products' slots (zeros where a slot is -1)."""
        out = np.zeros((len(slots), self.image_size, self.image_size, 3), np.float32)
        present = slots >= 0
        if present.any():
            out[present] = to_unit(self._pixels[slots[present]])
        return out


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
