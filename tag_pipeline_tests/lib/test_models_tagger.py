"""The tf.data input and one short training epoch of a tiny tagger."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tag_pipeline.lib.models.bundle import TaggerBundle
from tag_pipeline.lib.models.dataset import make_dataset
from tag_pipeline.lib.models.labels import build_label_space, encode_labels, sample_weights
from tag_pipeline.lib.models.scoring import apply_thresholds, evaluate_heads
from tag_pipeline.lib.models.tagger import (
    MaskedMaxPooling1D,
    PresentImages,
    ScatterImageFeatures,
    TaggerConfig,
    ZeroMaskedSteps,
    build_tagger,
    fold_batch_norm,
    predict_scores,
    scores_to_tags,
    train_tagger,
    tune_thresholds,
)
from tag_pipeline.lib.models.text import learn_vocabulary, make_tokenizer, product_texts
from tag_pipeline_tests.lib.models_data import labels_frame, products_frame, write_png

TINY = TaggerConfig(embedding_dim=8, lstm_units=8, ngram_filters=4, cnn_filters=(4, 4, 4),
                    fused_dim=16, image_size=16, seq_len=16, epochs=1, batch_size=8,
                    vocab_size=300)


@pytest.fixture
def catalog(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    images = {0: write_png(tmp_path / "blue.png", (0, 0, 255)),
              8: write_png(tmp_path / "black.png", (0, 0, 0)), 16: str(bad)}
    products, labels = products_frame(images), labels_frame()
    space = build_label_space(labels, products["product_id"][:24], min_support=3)
    vocab = learn_vocabulary(product_texts(products[:24]), TINY.vocab_size)
    return products, labels, space, make_tokenizer(vocab, TINY.seq_len)


def test_dataset_batches_inputs_targets_and_weights(catalog):
    products, labels, space, tokenizer = catalog
    y = encode_labels(labels, products["product_id"], space)
    ds = make_dataset(products, y, tokenizer, image_size=16, batch_size=20,
                      sample_weights=sample_weights(y, space))
    x, targets, weights = next(iter(ds))
    assert x["tokens"].shape == (20, 16) and x["image"].shape == (20, 16, 16, 3)
    assert x["image_mask"].numpy().ravel()[[0, 1, 8, 16]].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert set(targets) == set(weights) == {h.output_name for h in space.heads}
    assert targets["category_articleType"].shape == (20, 3)
    with pytest.raises(ValueError, match="sample_weights"):
        make_dataset(products, y, tokenizer)


def test_model_masks_the_image_branch(catalog):
    _, _, space, _ = catalog
    model = build_tagger(space, TINY)
    assert model.get_layer("fused").units == TINY.fused_dim
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 50, size=(2, TINY.seq_len)).astype("int32")
    noise = rng.random((2, 16, 16, 3)).astype("float32")
    without = np.zeros((2, 1), "float32")
    a = model({"tokens": tokens, "image": noise, "image_mask": without}, training=False)
    b = model({"tokens": tokens, "image": np.zeros_like(noise), "image_mask": without},
              training=False)
    # with mask 0 the pixels cannot matter
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=1e-6)


def test_cnn_runs_on_photos_only_and_puts_features_back_in_their_rows(catalog):
    images = np.arange(4 * 2 * 2 * 3, dtype="float32").reshape(4, 2, 2, 3)
    mask = np.array([[0.0], [1.0], [0.0], [1.0]], "float32")
    present = np.asarray(PresentImages()([images, mask]))
    np.testing.assert_array_equal(present, images[[1, 3]])
    features = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")
    np.testing.assert_array_equal(np.asarray(ScatterImageFeatures()([features, mask])),
                                  [[0, 0], [1, 2], [0, 0], [3, 4]])
    # no photo in the batch: row 0 goes through (never an empty batch), its features zeroed
    none = np.zeros((3, 1), "float32")
    assert np.asarray(PresentImages()([images[:3], none])).shape == (1, 2, 2, 3)
    np.testing.assert_array_equal(
        np.asarray(ScatterImageFeatures()([np.ones((1, 2), "float32"), none])), np.zeros((3, 2)))

    # In the model: a photo's scores do not depend on which other rows of its batch have
    # photos, and training on batches without any photo keeps batch norm finite.
    _, _, space, _ = catalog
    model = build_tagger(space, TINY)
    rng = np.random.default_rng(1)
    tokens = rng.integers(1, 50, size=(4, TINY.seq_len)).astype("int32")
    photos = rng.random((4, 16, 16, 3)).astype("float32")
    mixed = model({"tokens": tokens, "image": photos, "image_mask": mask}, training=False)
    alone = model({"tokens": tokens[[1, 3]], "image": photos[[1, 3]],
                   "image_mask": mask[[1, 3]]}, training=False)
    for name in mixed:
        np.testing.assert_allclose(np.asarray(mixed[name])[[1, 3]], alone[name], atol=1e-6)
    model({"tokens": tokens, "image": np.zeros_like(photos), "image_mask": np.zeros((4, 1),
           "float32")}, training=True)
    bn = model.get_layer("bn0")
    assert all(np.isfinite(np.asarray(w)).all() for w in bn.weights)


@pytest.mark.slow
def test_one_epoch_trains_predicts_tunes_and_reloads(catalog, tmp_path):
    products, labels, space, tokenizer = catalog
    train, val = products[:24], products[24:]
    y_train = encode_labels(labels, train["product_id"], space)
    y_val = encode_labels(labels, val["product_id"], space)
    train_ds = make_dataset(train, y_train, tokenizer, 16, 8, shuffle=True, seed=1,
                            sample_weights=sample_weights(y_train, space))
    val_ds = make_dataset(val, y_val, tokenizer, 16, 8,
                          sample_weights=sample_weights(y_val, space))
    epochs = []
    model, history = train_tagger(train_ds, val_ds, space, TINY,
                                  on_epoch_end=lambda e, logs: epochs.append((e, logs)))
    assert [e for e, _ in epochs] == [0]
    assert np.isfinite(epochs[0][1]["val_loss"]) and len(history["loss"]) == 1
    # the learning-rate schedule reports its rate every epoch
    assert history["learning_rate"] == pytest.approx([TINY.learning_rate])

    scores = predict_scores(model, make_dataset(val, None, tokenizer, 16, 4), space)
    assert set(scores) == set(space.head_names)
    for head in space.heads:
        s = scores[head.name]
        assert s.shape == (val.height, head.size)
        assert np.isfinite(s).all() and (s >= 0).all() and (s <= 1).all()
        if head.kind == "softmax":
            np.testing.assert_allclose(s.sum(axis=1), 1.0, atol=1e-5)

    thresholds = tune_thresholds(scores, y_val, space)
    assert all(thresholds[h.name].shape == (h.size,) for h in space.heads)
    tags = scores_to_tags(scores, thresholds, space)
    assert len(tags) == val.height
    # the softmax floor is 0: every product gets a category
    assert all(any(t[0] == "category" for t in product_tags) for product_tags in tags)
    metrics = evaluate_heads(y_val, apply_thresholds(scores, thresholds, space), scores, space)
    assert 0.0 <= metrics["all"]["micro_f1"] <= 1.0

    path = tmp_path / "tagger.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    again = predict_scores(reloaded, make_dataset(val, None, tokenizer, 16, 4), space)
    for name in scores:
        np.testing.assert_allclose(scores[name], again[name], atol=1e-5)


def test_config_round_trip_and_unknown_settings():
    config = TaggerConfig(head_loss_weights={"style": 0.5}, ngram_sizes=(2, 4))
    assert TaggerConfig.from_dict(config.to_dict()) == config
    # a Dagster config gives lists; they compare equal to the tuples
    assert TaggerConfig(ngram_sizes=[1, 2, 3], cnn_filters=[16, 32, 64]) == TaggerConfig()
    with pytest.raises(ValueError, match="unknown TaggerConfig"):
        TaggerConfig.from_dict({"lstm": 3})
    with pytest.raises(ValueError, match="ngram_sizes.*\\[2, 2\\]"):
        TaggerConfig(ngram_sizes=(2, 2))
    with pytest.raises(ValueError, match="ngram_sizes.*\\[0\\]"):
        TaggerConfig(ngram_sizes=(0,))
    with pytest.raises(ValueError, match="lr_factor"):
        TaggerConfig(lr_factor=1.0)


def test_masked_max_pooling_ignores_padding():
    tokens = np.array([[5, 7, 0, 0], [0, 0, 0, 0], [3, 0, 0, 0]], "int32")
    sequence = np.array([[[1.0, -4.0], [2.0, -3.0], [9.0, 9.0], [9.0, 9.0]],
                         [[9.0, 9.0]] * 4,
                         [[-1.0, -2.0], [9.0, 9.0], [9.0, 9.0], [9.0, 9.0]]], "float32")
    pooled = np.asarray(MaskedMaxPooling1D()([sequence, tokens]))
    # padding holds the largest values but never wins; a text without tokens pools to 0
    np.testing.assert_array_equal(pooled, [[2.0, -3.0], [0.0, 0.0], [-1.0, -2.0]])


def test_zero_masked_steps_zeroes_padding_and_drops_the_mask():
    embedded = keras.layers.Embedding(10, 3, mask_zero=True)
    tokens = np.array([[4, 2, 0]], "int32")
    vectors = embedded(tokens)
    out = ZeroMaskedSteps()(vectors, mask=embedded.compute_mask(tokens))
    np.testing.assert_array_equal(np.asarray(out)[0, 2], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(out)[0, :2], np.asarray(vectors)[0, :2])
    assert ZeroMaskedSteps().compute_mask(vectors, embedded.compute_mask(tokens)) is None


@pytest.mark.parametrize("ngram_filters", [4, 0])
def test_text_features_and_the_imageless_shortcut(catalog, ngram_filters):
    _, _, space, tokenizer = catalog
    config = TaggerConfig(**{**TINY.to_dict(), "ngram_filters": ngram_filters})
    model = build_tagger(space, config)
    names = {layer.name for layer in model.layers}
    ngram_layers = {"ngram1_conv", "ngram2_conv", "ngram3_conv", "ngram1_pool", "ngram3_pool"}
    assert ngram_layers <= names if ngram_filters else not ngram_layers & names
    width = 2 * config.lstm_units + 3 * ngram_filters
    assert model.get_layer("text_features").output.shape[-1] == width
    # the n-grams of a title do not depend on how much padding follows it
    short = np.asarray(tokenizer(["men blue shirt"]))[:, :8]
    padded = np.concatenate([short, np.zeros((1, 8), "int32")], axis=1)
    embedding = model.get_layer("token_embedding")
    for size in config.ngram_sizes if ngram_filters else ():
        def ngrams(tokens, size=size):
            steps = model.get_layer("ngram_input")(embedding(tokens),
                                                   mask=embedding.compute_mask(tokens))
            conv = model.get_layer(f"ngram{size}_conv")(steps)
            return model.get_layer(f"ngram{size}_pool")([conv, tokens])
        np.testing.assert_allclose(ngrams(short), ngrams(padded), atol=1e-6)
    # products without an image skip the CNN, with the whole model's scores
    bundle = TaggerBundle(model=model, space=space, vocab=list(tokenizer.get_vocabulary()),
                          thresholds={}, config=config)
    assert bundle.uses_text_shortcut
    tokens = np.asarray(tokenizer(["men blue shirt", "红色 连衣裙", ""]))
    x = {"tokens": tokens, "image": np.zeros((3, 16, 16, 3), "float32"),
         "image_mask": np.zeros((3, 1), "float32")}
    whole = model(x, training=False)
    scores, _ = bundle.network(x)
    for head in space.heads:
        np.testing.assert_allclose(scores[head.name], whole[head.output_name], atol=1e-6)


def test_folding_batch_norm_keeps_the_scores(catalog):
    """Batch norms with far-from-initial statistics fold into their convolutions: same scores
    (up to float rounding) from a model without bn layers; a model lacking them cannot fold."""
    _, _, space, _ = catalog
    model = build_tagger(space, TINY)
    rng = np.random.default_rng(5)
    for i in range(len(TINY.cnn_filters)):
        bn = model.get_layer(f"bn{i}")
        gamma, beta, mean, var = (w.shape for w in bn.get_weights())
        bn.set_weights([rng.uniform(0.5, 2.0, gamma), rng.normal(0, 0.5, beta),
                        rng.normal(0, 0.5, mean), rng.uniform(0.2, 3.0, var)])
    folded = fold_batch_norm(model, space, TINY)
    assert not any(layer.name.startswith("bn") for layer in folded.layers)
    x = {"tokens": rng.integers(1, 50, (6, TINY.seq_len)).astype("int32"),
         "image": rng.random((6, 16, 16, 3)).astype("float32"),
         "image_mask": np.array([[1], [1], [0], [1], [0], [1]], "float32")}
    whole, fast = model(x, training=False), folded(x, training=False)
    for name in whole:
        np.testing.assert_allclose(fast[name], whole[name], rtol=0, atol=1e-5)
    # a wrong fold would show: without the batch norms' statistics the scores differ
    plain = build_tagger(space, TINY)
    plain.set_weights(model.get_weights())
    for i in range(len(TINY.cnn_filters)):
        plain.get_layer(f"bn{i}").set_weights(build_tagger(space, TINY).get_layer(
            f"bn{i}").get_weights())
    changed = plain(x, training=False)
    assert any(not np.allclose(changed[n], whole[n], atol=1e-3) for n in whole)
    with pytest.raises(ValueError):
        fold_batch_norm(keras.Model(model.inputs, model.outputs), space,
                        TaggerConfig.from_dict({**TINY.to_dict(), "cnn_filters": [4, 4, 4, 4]}))
