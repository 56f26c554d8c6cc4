"""The TF-IDF baseline trains on the tiny catalog and scores in the tagger's shapes."""

from __future__ import annotations

import numpy as np

from tag_pipeline.lib.models.baseline import baseline_scores, train_baseline
from tag_pipeline.lib.models.labels import build_label_space, encode_labels
from tag_pipeline.lib.models.scoring import apply_thresholds, evaluate_heads, tune_thresholds
from tag_pipeline_tests.lib.models_data import labels_frame, products_frame


def test_baseline_trains_and_scores_every_head():
    products, labels = products_frame(), labels_frame()
    train = products[:24]
    held_out = products[24:]
    space = build_label_space(labels, train["product_id"], min_support=3)
    y_train = encode_labels(labels, train["product_id"], space)
    model = train_baseline(train, y_train, space, min_df=1)

    scores = baseline_scores(model, held_out)
    assert set(scores) == set(space.head_names)
    for head in space.heads:
        s = scores[head.name]
        assert s.shape == (held_out.height, head.size)
        assert ((s >= 0) & (s <= 1)).all()
        if head.kind == "softmax":
            assert np.allclose(s.sum(axis=1), 1.0, atol=1e-5)

    # on its own training products the linear model separates the categories
    train_scores = baseline_scores(model, train)
    decisions = apply_thresholds(train_scores, tune_thresholds(train_scores, y_train, space), space)
    metrics = evaluate_heads(y_train, decisions, train_scores, space)
    assert metrics["category:articleType"]["micro_f1"] > 0.9
    # a Chinese-only title gets its category from character n-grams
    shoes = [c.tag for c in space.head("category:articleType").classes].index("Shoes")
    zh = products.filter(products["title"] == "男士黑色运动鞋")
    assert baseline_scores(model, zh)["category:articleType"][0].argmax() == shoes
