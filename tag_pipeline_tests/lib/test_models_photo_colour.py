"""The photo-colour backend: colour histograms of the tagger's image input, a classifier per
softmax head, mixed by the fusion into photographed products only where validation gains;
trained, evaluated, saved and served through the one serving path."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from PIL import Image

from tag_pipeline.lib.models.fusion import (
    CNN,
    LINEAR,
    PHOTO,
    Fusion,
    fuse,
    softmax_objective,
    tune_fusion,
)
from tag_pipeline.lib.models.labels import SOFTMAX, Head, LabelSpace, TagClass
from tag_pipeline.lib.models.photo_colour import (
    N_FEATURES,
    colour_histograms,
    train_photo_colour,
)

COLOURS = {"Red": (200, 30, 30), "Blue": (30, 40, 190), "Green": (40, 160, 50)}


def _photo(rgb: tuple[int, int, int], size: int = 16, margin: int = 4,
           rng: np.random.Generator | None = None) -> np.ndarray:
    """A product of colour ``rgb`` on a white background (uint8), with a little noise."""
    img = np.full((size, size, 3), 255, np.uint8)
    patch = np.array(rgb, np.int64)
    if rng is not None:
        patch = patch + rng.integers(-20, 21, 3)
    img[margin:size - margin, margin:size - margin] = np.clip(patch, 0, 255)
    return img


def test_colour_histograms_read_the_product_not_its_background():
    red, on_white = np.full((1, 16, 16, 3), COLOURS["Red"], np.uint8), _photo(COLOURS["Red"])
    blue = np.full((1, 16, 16, 3), COLOURS["Blue"], np.uint8)
    h = colour_histograms(np.concatenate([red, on_white[None], blue]))
    assert h.shape == (3, N_FEATURES)
    # the white margin is background: the red product's colour bins are those of a red photo
    np.testing.assert_allclose(h[1, :-1], h[0, :-1])
    assert h[0, -1] == 1.0 and h[1, -1] == pytest.approx(64 / 256)  # the foreground share
    assert np.abs(h[0, :-1] - h[2, :-1]).sum() > 1.0  # red and blue fall in other bins
    # float pixels in [0, 1] (the model's image input) give the uint8 pixels' features
    np.testing.assert_allclose(colour_histograms(np.stack([red[0], on_white, blue[0]])
                                                 .astype(np.float32) / 255.0), h)
    # an all-white photo has no foreground: zeros, not a division by zero
    assert not colour_histograms(np.full((1, 8, 8, 3), 255, np.uint8)).any()
    with pytest.raises(ValueError, match=r"shape \(products, height, width, 3\)"):
        colour_histograms(np.zeros((2, 8, 8)))


COLOUR = Head(name="attribute:colour", kind=SOFTMAX, tag_type="attribute", facets=("colour",),
              classes=tuple(TagClass("colour", c, 100) for c in COLOURS), n_labeled=300)
TYPE = Head(name="category:type", kind=SOFTMAX, tag_type="category", facets=("type",),
            classes=(TagClass("type", "Shirts", 150), TagClass("type", "Shoes", 150)),
            n_labeled=300)
SPACE = LabelSpace(heads=(COLOUR, TYPE), rare_tags=(), min_support=1, n_train=300)


def _split(n: int, rng: np.random.Generator):
    """Products whose colour only their photo shows (two thirds have one), and whose type
    their text shows: (photos, has_photo, targets)."""
    colour = rng.integers(0, 3, n)
    kind = rng.integers(0, 2, n)
    has_photo = rng.random(n) < 2 / 3
    photos = np.stack([_photo(list(COLOURS.values())[c], rng=rng) for c in colour])
    photos[~has_photo] = 0
    return photos, has_photo, {COLOUR.name: np.eye(3)[colour], TYPE.name: np.eye(2)[kind]}


def _text_backends(targets, rng):
    """CNN + BiLSTM and linear scores that know the type and guess the colour."""
    def noisy(y, noise):
        z = y * 2.0 + rng.normal(0, noise, y.shape)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return {b: {COLOUR.name: noisy(targets[COLOUR.name], 3.0),
                TYPE.name: noisy(targets[TYPE.name], 0.8)} for b in (CNN, LINEAR)}


def test_the_fusion_mixes_photo_colours_into_photographed_products_where_validation_gains():
    rng = np.random.default_rng(0)
    photos, has_photo, y_train = _split(300, rng)
    backend = train_photo_colour(colour_histograms(photos), has_photo, y_train, SPACE)
    assert backend is not None and set(backend.classifiers) == {COLOUR.name, TYPE.name}
    assert backend.n_train == has_photo.sum()
    val_photos, val_has, y_val = _split(240, rng)
    backends = _text_backends(y_val, rng)
    backends[PHOTO] = backend.scores(val_photos.astype(np.float32) / 255.0, val_has)
    # the colours of a photo tell its product's colour
    assert softmax_objective(backends[PHOTO][COLOUR.name][val_has], y_val[COLOUR.name][val_has],
                             0.0) > 0.95
    without = tune_fusion(backends, y_val, SPACE)
    fusion = tune_fusion(backends, y_val, SPACE, has_photo=val_has)
    # mixed into the colour head, where it gains; not into the type head, where the photo
    # (the same colours for shirts and shoes) says nothing
    assert fusion.photo_heads == (COLOUR.name,)
    assert fusion.heads[TYPE.name].photo_weight == 0.0
    assert without.photo_heads == ()
    fused = fuse(fusion, backends, SPACE, val_has)
    plain = fuse(without, backends, SPACE)
    # products without a photo keep the fused scores they had; photographed ones gain
    np.testing.assert_array_equal(fused[COLOUR.name][~val_has], plain[COLOUR.name][~val_has])
    np.testing.assert_array_equal(fused[TYPE.name], plain[TYPE.name])

    def accuracy(scores, rows):
        return softmax_objective(scores[rows], y_val[COLOUR.name][rows], 0.0)
    assert accuracy(fused[COLOUR.name], val_has) > accuracy(plain[COLOUR.name], val_has) + 0.2
    assert fusion.heads[COLOUR.name].objective == pytest.approx(
        softmax_objective(fused[COLOUR.name], y_val[COLOUR.name], fusion.macro_weight))
    assert PHOTO in fusion.heads[COLOUR.name].backend_objectives
    # the weight travels with the fusion; fusing without the photo mask is an error
    assert Fusion.from_dict(fusion.to_dict()).heads[COLOUR.name].photo_weight == \
        fusion.heads[COLOUR.name].photo_weight
    with pytest.raises(ValueError, match=r"photo_colour backend into head\(s\) "
                                         r"\['attribute:colour'\].*photo mask \(missing\)"):
        fuse(fusion, backends, SPACE)


def test_photos_that_say_nothing_are_kept_out():
    rng = np.random.default_rng(1)
    photos, has_photo, y_train = _split(300, rng)
    backend = train_photo_colour(colour_histograms(photos), has_photo, y_train, SPACE)
    val_photos, val_has, y_val = _split(240, rng)
    # shuffled photos: their colours no longer belong to their products
    val_photos = val_photos[rng.permutation(len(val_photos))]
    backends = _text_backends(y_val, rng)
    backends[PHOTO] = backend.scores(val_photos.astype(np.float32) / 255.0, val_has)
    assert tune_fusion(backends, y_val, SPACE, has_photo=val_has).photo_heads == ()


def test_too_few_training_photos_train_no_backend():
    rng = np.random.default_rng(2)
    photos, has_photo, y_train = _split(300, rng)
    has_photo[:] = False
    has_photo[:10] = True
    assert train_photo_colour(colour_histograms(photos), has_photo, y_train, SPACE) is None


def _catalog(folder, n: int = 360, seed: int = 3):
    """Products whose colour only the photo shows (titles name the type and an id), two
    thirds with a photo file, and their labels."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for i in range(n):
        colour = list(COLOURS)[rng.integers(0, 3)]
        kind = ("Shirts", "Shoes")[rng.integers(0, 2)]
        path = None
        if rng.random() < 2 / 3:
            path = str(folder / f"{i}.png")
            Image.fromarray(_photo(COLOURS[colour], size=32, margin=6, rng=rng)).save(path)
        pid = f"p{i:04d}"
        rows.append((pid, f"{kind.lower()} model {i}", "", path))
        labels += [(pid, colour, "attribute", "colour"), (pid, kind, "category", "type")]
    products = pl.DataFrame(rows, schema={"product_id": pl.Utf8, "title": pl.Utf8,
                                          "description": pl.Utf8, "image_path": pl.Utf8},
                            orient="row")
    labels = pl.DataFrame(labels, schema={"product_id": pl.Utf8, "tag": pl.Utf8,
                                          "tag_type": pl.Utf8, "facet": pl.Utf8},
                          orient="row").with_columns(parent=pl.lit(None, pl.Utf8),
                                                     level=pl.lit(1))
    return products, labels


@pytest.mark.slow
def test_a_tagger_trained_on_photos_mixes_their_colours_evaluates_saves_and_serves_them(
        tmp_path):
    from tag_pipeline.lib.models.bundle import PHOTO_FILE, load_bundle, save_bundle
    from tag_pipeline.lib.models.serving import product_scores
    from tag_pipeline.lib.models.tagger import TaggerConfig
    from tag_pipeline.lib.models.training import (
        TAGGER,
        TAGGER_NO_PHOTO,
        backend_test_scores,
        build_features,
        evaluate_on_test,
        tagger_scores_of,
        train_model,
    )

    (tmp_path / "img").mkdir()
    products, labels = _catalog(tmp_path / "img")
    features = build_features(products, labels, min_support=3)
    config = TaggerConfig(embedding_dim=8, lstm_units=8, cnn_filters=(4, 4, 4), fused_dim=16,
                          image_size=16, seq_len=8, epochs=1, batch_size=32, vocab_size=300)
    trained = train_model(features, config)
    colour = "attribute:colour"
    assert trained.photo is not None and colour in trained.fusion.photo_heads
    evaluation = evaluate_on_test(trained, features)
    # the ablation: the photo-colour backend alone (photographed products only) and the
    # tagger without it, beside the tagger
    assert set(evaluation.results[PHOTO]) == {"images"}
    with_photo = evaluation.metric(TAGGER, "images", f"head:{colour}", "accuracy")
    assert with_photo > 0.9
    assert with_photo > evaluation.metric(TAGGER_NO_PHOTO, "images", f"head:{colour}",
                                          "accuracy") + 0.2
    # saved and loaded, the serving path (inputs -> backends -> fusion) gives the scores
    # the evaluation computed
    bundle = load_bundle(save_bundle(trained.bundle(), tmp_path / "bundle"))
    assert bundle.photo is not None
    test = features.split("test")
    backends, has_photo = backend_test_scores(trained, test)
    expected = tagger_scores_of(trained, backends, has_photo)
    served = product_scores(bundle, test)
    for name, scores in expected.items():
        np.testing.assert_allclose(served[name], scores, atol=2e-5, err_msg=name)
    # the same photo as raw bytes (REST, ``tag``) is read the same way
    row = test.filter(pl.col("image_path").is_not_null()).head(1)
    as_bytes = row.with_columns(
        image_bytes=pl.Series([open(row["image_path"][0], "rb").read()], dtype=pl.Binary),
        image_path=pl.lit(None, pl.Utf8))
    np.testing.assert_allclose(product_scores(bundle, as_bytes)[colour],
                               product_scores(bundle, row)[colour], atol=1e-6)
    # a bundle whose fusion mixes in photo colours cannot load without them
    (tmp_path / "bundle" / PHOTO_FILE).unlink()
    with pytest.raises(ValueError, match=r"photo-colour backend into \['attribute:colour'\], "
                                         r"which the bundle lacks \(photo_colour.joblib\)"):
        load_bundle(tmp_path / "bundle")
