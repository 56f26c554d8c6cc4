"""The image map: pixels and mask 1 for a readable image, zeros and mask 0 otherwise."""

from __future__ import annotations

import io

import numpy as np
import pytest
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


def test_images_decoded_once_give_the_arrays_of_decoding_every_pass(tmp_path):
    """Training's DecodedImages path: same batches (order, pixels, masks, targets) as the
    pipeline that decodes each image on every pass, shuffled or not; bad files get mask 0."""
    from tag_pipeline.lib.models.dataset import make_dataset
    from tag_pipeline.lib.models.images import DecodedImages
    from tag_pipeline.lib.models.labels import build_label_space, encode_labels, sample_weights
    from tag_pipeline.lib.models.text import learn_vocabulary, make_tokenizer, product_texts
    from tag_pipeline_tests.lib.models_data import labels_frame, products_frame

    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    paths = {0: write_png(tmp_path / "a.png", (200, 10, 10)),
             3: write_png(tmp_path / "b.png", (10, 200, 10), size=40),
             5: str(tmp_path / "broken.jpg"), 7: str(tmp_path / "gone.png")}
    products = products_frame(paths)
    labels = labels_frame()
    space = build_label_space(labels, products["product_id"], min_support=1)
    y = encode_labels(labels, products["product_id"], space)
    w = sample_weights(y, space)
    tokenizer = make_tokenizer(learn_vocabulary(product_texts(products), 200), 12)
    decoded = DecodedImages(products["image_path"].to_list(), 8, tmp_path)
    assert decoded.mask.ravel()[[0, 3, 5, 7]].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert int(decoded.mask.sum()) == 2
    for shuffle in (False, True):
        plain = make_dataset(products, y, tokenizer, 8, 5, shuffle=shuffle, seed=3,
                             sample_weights=w)
        cached = make_dataset(products, y, tokenizer, 8, 5, shuffle=shuffle, seed=3,
                              sample_weights=w, images=decoded)
        for _ in range(2):  # two epochs: the same reshuffle in both pipelines
            batches = list(zip(plain, cached, strict=True))
            assert len(batches) == -(-products.height // 5)
            for (x1, y1, w1), (x2, y2, w2) in batches:
                for name in ("tokens", "image", "image_mask"):
                    np.testing.assert_array_equal(x1[name].numpy(), x2[name].numpy())
                for name in y1:
                    np.testing.assert_array_equal(y1[name].numpy(), y2[name].numpy())
                    np.testing.assert_array_equal(w1[name].numpy(), w2[name].numpy())
    with pytest.raises(ValueError, match="decoded images are for 30 products"):
        make_dataset(products.head(3), None, tokenizer, 8, 5, images=decoded)


def test_identical_bad_bytes_at_two_paths_are_reported_under_each_path(tmp_path):
    # one decode per content hash, but the verdict never carries the first path's name
    from tag_pipeline.lib.images import verify_images

    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(b"not an image at all")
    checks, stats = verify_images(["a.jpg", "b.jpg"], tmp_path, tmp_path, 8, {}, {})
    assert stats.decoded == 1
    assert [c.status for c in checks] == ["corrupt", "corrupt"]
    for check in checks:
        assert "a.jpg" not in check.detail and "b.jpg" not in check.detail, check.detail
        assert "cannot identify image file" in check.detail
