"""The image map: pixels and mask 1 for a readable image, zeros and mask 0 otherwise."""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf
from PIL import Image

from tag_pipeline.lib.models.images import make_image_loader, read_image
from tag_pipeline_tests.lib.models_data import write_png


def test_image_map_reads_good_images_and_masks_the_rest(tmp_path):
    red = write_png(tmp_path / "red.png", (255, 0, 0))
    jpeg = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 0, 255)).save(jpeg, format="JPEG")
    (tmp_path / "blue.jpg").write_bytes(jpeg.getvalue())
    (tmp_path / "truncated.jpg").write_bytes(jpeg.getvalue()[:200])
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG not really")
    paths = [red, str(tmp_path / "blue.jpg"), "", str(tmp_path / "missing.png"),
             str(tmp_path / "truncated.jpg"), str(tmp_path / "garbage.png")]

    ds = tf.data.Dataset.from_tensor_slices(paths).map(make_image_loader(8)).batch(len(paths))
    images, masks = next(iter(ds))
    assert images.shape == (6, 8, 8, 3) and masks.shape == (6, 1)
    assert masks.numpy().ravel().tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    images = images.numpy()
    assert np.allclose(images[0, ..., 0], 1.0) and np.allclose(images[0, ..., 1:], 0.0)
    assert images[1, ..., 2].mean() > 0.9 and images[1].max() <= 1.0
    assert not images[2:].any()


def test_read_image_converts_grey_and_alpha(tmp_path):
    Image.new("LA", (16, 16), (128, 0)).save(tmp_path / "grey.png")
    pixels, mask = read_image(str(tmp_path / "grey.png"), 4)
    assert mask == 1.0 and pixels.shape == (4, 4, 3)
    assert np.allclose(pixels, 128 / 255, atol=1e-3)
