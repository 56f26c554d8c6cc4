"""The label space: softmax vs sigmoid heads, rare tags reported, encodings and weights."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from tag_pipeline.lib.models.labels import (
    SIGMOID,
    SOFTMAX,
    LabelSpace,
    build_label_space,
    decode,
    encode_labels,
    positive_weights,
    sample_weights,
)
from tag_pipeline_tests.lib.models_data import labels_frame, products_frame


@pytest.fixture
def space() -> LabelSpace:
    return build_label_space(labels_frame(), products_frame()["product_id"], min_support=3)


def test_single_valued_facets_get_softmax_heads_and_the_rest_one_sigmoid_per_type(space):
    kinds = {h.name: h.kind for h in space.heads}
    assert kinds == {
        "attribute:baseColour": SOFTMAX, "attribute:gender": SOFTMAX,
        "category:articleType": SOFTMAX, "scene:usage": SOFTMAX,
        # occasion has a product with two occasions; style one with Printed and Slim Fit
        "scene": SIGMOID, "style": SIGMOID,
    }
    scene = space.head("scene")
    assert scene.facets == ("occasion",)
    assert [(c.tag, c.support) for c in scene.classes] == [("office", 10), ("party", 10),
                                                           ("travel", 7)]
    assert space.head("category:articleType").output_name == "category_articleType"
    assert space.n_train == 30


def test_rare_tags_are_reported_not_dropped(space):
    assert [(r.tag, r.tag_type, r.facet, r.support) for r in space.rare_tags] == [
        ("Umbrellas", "category", "articleType", 1)]
    tags = {c.tag for h in space.heads for c in h.classes}
    assert "Umbrellas" not in tags


def test_heads_come_from_the_training_split_only():
    labels = labels_frame()
    train = products_frame()["product_id"][:10]
    space = build_label_space(labels, train, min_support=3)
    # the first 10 products: 8 shirts, 2 shoes; usage 4 Casual, 4 Formal, 2 Sports
    rare = {(r.tag, r.facet, r.support) for r in space.rare_tags}
    assert {("Shoes", "articleType", 2), ("Sports", "usage", 2)} <= rare
    assert [c.tag for c in space.head("scene:usage").classes] == ["Casual", "Formal"]
    # articleType is left with Shirts alone, so it moves into the category sigmoid head
    assert space.head("category").kind == SIGMOID
    assert [c.tag for c in space.head("category").classes] == ["Shirts"]
    assert space.n_train == 10


def test_single_valued_facet_with_one_supported_tag_joins_the_sigmoid_head():
    labels = pl.DataFrame({
        "product_id": ["a", "b", "c", "a", "b", "c", "d"],
        "tag": ["Cotton", "Cotton", "Cotton", "Summer", "Summer", "Summer", "Winter"],
        "tag_type": ["attribute"] * 3 + ["scene"] * 4,
        "facet": ["material"] * 3 + ["season"] * 4,
    })
    space = build_label_space(labels, ["a", "b", "c", "d"], min_support=2)
    assert [(h.name, h.kind) for h in space.heads] == [("attribute", SIGMOID), ("scene", SIGMOID)]
    assert [(r.tag, r.support) for r in space.rare_tags] == [("Winter", 1)]


def test_encoding_one_hot_multi_hot_and_masks(space):
    labels = labels_frame()
    ids = ["p029", "p026", "p999"]  # two Slim Fit + Printed, no colour, unknown product
    y = encode_labels(labels, ids, space)
    colour = space.head("attribute:baseColour")
    assert y["attribute:baseColour"][0].tolist() == [
        1.0 if c.tag == "Red" else 0.0 for c in colour.classes]
    assert y["attribute:baseColour"][1].sum() == 0 and y["style"][2].sum() == 0
    assert y["style"][0].tolist() == [1.0, 1.0]
    w = sample_weights(y, space)
    assert w["attribute:baseColour"][1] == 0.0 and w["attribute:baseColour"][0] > 0
    assert w["style"].tolist() == [1.0, 1.0, 1.0]


def test_class_weights_average_one_on_training_rows(space):
    labels = labels_frame()
    ids = products_frame()["product_id"]
    y = encode_labels(labels, ids, space)
    w = sample_weights(y, space, class_weight_power=1.0)
    usage = w["scene:usage"]
    known = y["scene:usage"].sum(axis=1) > 0
    assert usage[known].mean() == pytest.approx(1.0)
    # balanced weights: the rarest usage (Sports, 4 products) weighs most
    sports = [c.tag for c in space.head("scene:usage").classes].index("Sports")
    assert usage[y["scene:usage"][:, sports] == 1].min() > usage[known].max() - 1e-6
    unweighted = sample_weights(y, space, class_weight_power=0.0)["scene:usage"]
    assert set(unweighted[known].round(6).tolist()) == {1.0}


def test_positive_weights_grow_with_rarity_and_are_capped(space):
    pos = positive_weights(space, max_weight=2.0)
    assert set(pos) == {"scene", "style"}
    # style: Printed 7 of 30 -> sqrt(23/7) = 1.81; Slim Fit 4 of 30 -> sqrt(26/4) = 2.55 -> 2.0
    assert pos["style"].tolist() == pytest.approx([np.sqrt(23 / 7), 2.0])


def test_json_round_trip_and_decode(space):
    assert LabelSpace.from_json(space.to_json()) == space
    y = encode_labels(labels_frame(), ["p000"], space)
    assert sorted(decode(y, space)[0]) == sorted([
        ("attribute", "baseColour", "Blue"), ("attribute", "gender", "Men"),
        ("category", "articleType", "Shirts"), ("scene", "usage", "Casual"),
        ("scene", "occasion", "party"), ("style", "style", "Printed")])


def test_bad_label_frames_are_rejected():
    with pytest.raises(ValueError, match="lacks column"):
        build_label_space(labels_frame().drop("facet"), ["p000"])
    bad = labels_frame().with_columns(tag_type=pl.lit("colour"))
    with pytest.raises(ValueError, match="unknown tag_type"):
        build_label_space(bad, ["p000"])
    space = build_label_space(labels_frame(), products_frame()["product_id"])
    with pytest.raises(ValueError, match="duplicates"):
        encode_labels(labels_frame(), ["p000", "p000"], space)


def test_numpy_only_modules_do_not_import_tensorflow():
    code = ("import sys, tag_pipeline.lib.metrics, tag_pipeline.lib.models.split, "
            "tag_pipeline.lib.models.labels, tag_pipeline.lib.models.scoring, "
            "tag_pipeline.lib.models.baseline; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'keras_hub') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
