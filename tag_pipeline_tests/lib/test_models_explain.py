"""Tag explanations by word occlusion, on a tiny tagger trained on a crafted catalog.

Titles combine a colour word (Chinese or English) with a garment word and a filler that
carries no label, in varying order, so a trained tagger can only learn the colour from the
colour word and the article type from the garment word; the explanations must say so.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tag_pipeline.lib.models.bundle import TaggerBundle
from tag_pipeline.lib.models.explain import (
    explain_tags,
    occlude,
    product_words,
    split_words,
)
from tag_pipeline.lib.models.inputs import model_inputs
from tag_pipeline.lib.models.serving import product_scores, tag_frame
from tag_pipeline.lib.models.tagger import TaggerConfig
from tag_pipeline.lib.models.training import build_features, train_model
from tag_pipeline_tests.lib.models_data import write_png

# these tests train taggers or refiners, or run whole jobs (make test-fast skips them)
pytestmark = pytest.mark.slow

COLOURS = {"Red": ("红色", "red"), "Blue": ("蓝色", "blue"), "Black": ("黑色", "black")}
GARMENTS = {"Dress": ("连衣裙", "dress"), "Shirt": ("衬衫", "shirt"), "Trousers": ("裤子", "pants")}
FILLERS = ("", "女士", "新款", "夏季", "women", "classic", "new")
CONFIG = TaggerConfig(embedding_dim=16, lstm_units=16, cnn_filters=(4, 4, 4), fused_dim=32,
                      image_size=16, seq_len=16, epochs=6, batch_size=16, vocab_size=300,
                      learning_rate=1e-2, patience=2, dropout=0.1, fuse_linear=False)


def crafted_catalog(image_path: str, n: int = 240) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Products and labels (baseColour attribute, articleType category), seeded."""
    rng = np.random.default_rng(7)
    rows, labels = [], []
    for i in range(n):
        colour = list(COLOURS)[rng.integers(3)]
        garment = list(GARMENTS)[rng.integers(3)]
        lang = rng.integers(2)
        c, g = COLOURS[colour][lang], GARMENTS[garment][lang]
        filler = FILLERS[rng.integers(len(FILLERS))]
        layout = rng.integers(4)
        if layout == 0:
            title = f"{filler} {c} {g}"
        elif layout == 1:
            title = f"{g} {c} {filler}"
        elif layout == 2:
            title = f"{c} {filler} {g}"
        else:  # written without spaces, as Chinese titles often are
            title = f"{filler}{c}{g}" if lang == 0 else f"{c} {g} {filler}"
        pid = f"c{i:04d}"
        # a fifth of the products has the same grey photo: it carries no label
        rows.append((pid, title.strip(), "", image_path if i % 5 == 0 else None))
        labels += [(pid, colour, "attribute", "baseColour"),
                   (pid, garment, "category", "articleType")]
    products = pl.DataFrame(rows, schema={"product_id": pl.Utf8, "title": pl.Utf8,
                                          "description": pl.Utf8, "image_path": pl.Utf8},
                            orient="row")
    frame = pl.DataFrame(labels, schema={"product_id": pl.Utf8, "tag": pl.Utf8,
                                         "tag_type": pl.Utf8, "facet": pl.Utf8}, orient="row")
    return products, frame


@pytest.fixture(scope="module")
def grey_image(tmp_path_factory) -> str:
    return write_png(tmp_path_factory.mktemp("explain_images") / "grey.png", (128, 128, 128))


@pytest.fixture(scope="module")
def bundle(grey_image) -> TaggerBundle:
    products, labels = crafted_catalog(grey_image)
    features = build_features(products, labels, min_support=3)
    trained = train_model(features, CONFIG)
    return TaggerBundle(model=trained.model, space=trained.space, vocab=trained.vocab,
                        thresholds=trained.thresholds, config=CONFIG)


def queries(grey_image: str) -> pl.DataFrame:
    return pl.DataFrame({
        "product_id": ["zh", "en", "zh_joined", "en_image", "empty"],
        "title": ["红色 连衣裙", "red dress", "女士红色连衣裙", "red dress", ""],
        "description": ["", None, "", "", ""],
        "image_path": [None, None, None, grey_image, None],
    })


@pytest.fixture(scope="module")
def explained(bundle, grey_image) -> pl.DataFrame:
    products = queries(grey_image)
    tags = tag_frame(bundle, products)
    return explain_tags(bundle, products, tags)


def row(frame: pl.DataFrame, product_id: str, tag: str) -> dict:
    rows = frame.filter(pl.col("product_id") == product_id, pl.col("tag") == tag)
    assert rows.height == 1, f"{product_id} was not tagged {tag}: {frame}"
    return rows.row(0, named=True)


def test_split_words_keeps_short_words_and_pairs_long_han_runs():
    assert split_words("红色 连衣裙") == [("红色", 0, 2), ("连衣裙", 3, 6)]
    assert [w for w, _, _ in split_words("【包邮】女士红色连衣裙，Slim-Fit.")] == [
        "包邮", "女士", "士红", "红色", "色连", "连衣", "衣裙", "Slim-Fit"]
    assert [w for w, _, _ in split_words("真皮材质、休闲 -- |")] == ["真皮材质", "休闲"]
    assert [w for w, _, _ in split_words("Li-Ning Travel.<br/>条纹跑鞋 (3.5mm)")] == [
        "Li-Ning", "Travel", "br", "条纹跑鞋", "3.5mm"]
    assert split_words("") == []


def test_product_words_merge_repeats_and_cap():
    words = product_words("Men Blue Shirt", "blue cotton shirt", max_words=24)
    assert [w.text for w in words] == ["Men", "Blue", "Shirt", "cotton"]
    assert words[1].spans == ((0, 4, 8), (1, 0, 4))
    assert occlude("Men Blue Shirt", "blue cotton shirt", words[1]) == (
        "Men   Shirt", "  cotton shirt")
    many = product_words(" ".join(f"w{i}" for i in range(40)), "w1 extra", max_words=24)
    assert [w.text for w in many] == [f"w{i}" for i in range(24)]
    assert many[1].spans == ((0, 3, 5), (1, 0, 2))  # later occurrences still occluded


def test_colour_and_article_type_are_explained_by_their_words(explained):
    assert row(explained, "zh", "Red")["explanation"].split(" | ")[0] == "红色"
    assert row(explained, "zh", "Dress")["explanation"].split(" | ")[0] == "连衣裙"
    assert row(explained, "en", "Red")["explanation"].split(" | ")[0] == "red"
    assert row(explained, "en", "Dress")["explanation"].split(" | ")[0] == "dress"
    # a run of seven Han characters is explained by a 2-character piece holding 红
    joined = row(explained, "zh_joined", "Red")
    first = joined["explanation"].split(" | ")[0]
    assert len(first) == 2 and "红" in first
    for r in explained.iter_rows(named=True):
        if r["explanation"] is not None:
            words, support = r["explanation"].split(" | "), r["explanation_support"]
            assert len(words) == len(support) <= 2
            assert all(s > 0.01 for s in support) and support == sorted(support, reverse=True)


def test_support_is_the_score_drop_with_the_image_kept(bundle, explained, grey_image):
    r = row(explained, "en_image", "Red")
    assert r["explanation"].split(" | ")[0] == "red"
    frame = pl.DataFrame({"title": ["red dress", "  dress"], "description": ["", ""],
                          "image_path": [grey_image, grey_image]})
    x = model_inputs(bundle, frame)
    assert x["image_mask"][:, 0].tolist() == [1.0, 1.0]
    scores = product_scores(bundle, frame)["attribute:baseColour"]
    col = [c.tag for c in bundle.space.head("attribute:baseColour").classes].index("Red")
    assert r["explanation_support"][0] == pytest.approx(scores[0, col] - scores[1, col],
                                                        abs=1e-5)


def test_rows_kept_and_unexplainable_tags_are_null(bundle, grey_image):
    products = queries(grey_image)
    tags = pl.DataFrame({
        "product_id": ["empty", "empty", "zh", "zh", "en"],
        "tag": ["Red", "Dress", "Purple", "Red", "Red"],
        "tag_type": ["attribute", "category", "attribute", "attribute", "attribute"],
        "facet": ["baseColour", "articleType", "baseColour", "baseColour", "baseColour"],
        "source": ["model", "model", "catalog", "model", "model"],
    })
    out = explain_tags(bundle, products, tags, top_k=1, min_support=0.0)
    assert out.height == tags.height
    assert out.columns == [*tags.columns, "explanation", "explanation_support"]
    assert out.schema["explanation"] == pl.Utf8
    assert out.schema["explanation_support"] == pl.List(pl.Float64)
    assert out["product_id"].to_list() == tags["product_id"].to_list()
    # empty title: no words; Purple: unknown to the label space
    assert out["explanation"].to_list()[:3] == [None, None, None]
    assert out["explanation_support"].to_list()[:3] == [None, None, None]
    assert out["explanation"].to_list()[3:] == ["红色", "red"]


def test_missing_columns_and_unknown_products_raise(bundle, grey_image):
    products = queries(grey_image)
    tags = pl.DataFrame({"product_id": ["zh"], "tag": ["Red"], "tag_type": ["attribute"],
                         "facet": ["baseColour"]})
    with pytest.raises(ValueError, match=r"products frame lacks column\(s\) \['title'\]"):
        explain_tags(bundle, products.drop("title"), tags)
    with pytest.raises(ValueError, match=r"tags frame lacks column\(s\) \['tag_type', 'facet'\]"):
        explain_tags(bundle, products, tags.drop("tag_type", "facet"))
    with pytest.raises(ValueError, match=r"not in the products frame, e\.g\. \['nope'\]"):
        explain_tags(bundle, products, tags.with_columns(product_id=pl.lit("nope")))
    with pytest.raises(ValueError, match="duplicates"):
        explain_tags(bundle, pl.concat([products, products]), tags)
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        explain_tags(bundle, products, tags, top_k=0)
    empty = explain_tags(bundle, products, tags.clear())
    assert empty.height == 0 and "explanation" in empty.columns


def test_support_is_measured_with_the_products_feature_words(bundle):
    # a tagger that reads a feature column: the occluded texts keep the product's feature
    # words, and so does the original they are compared with (the score the product was given)
    import dataclasses

    from tag_pipeline.lib.models.catalog_features import FeatureColumn

    shade = dataclasses.replace(bundle, feature_columns=(FeatureColumn("shade"),))
    products = pl.DataFrame({"product_id": ["y"], "title": ["red dress"], "shade": ["2011"]})
    out = explain_tags(shade, products, tag_frame(shade, products), top_k=1, min_support=0.0)
    head = "attribute:baseColour"
    tagged = out.filter(pl.col("facet") == "baseColour").row(0, named=True)
    col = [c.tag for c in bundle.space.head(head).classes].index(tagged["tag"])
    word = tagged["explanation"]
    assert (tagged["tag"], word) == ("Red", "red")
    occluded = products.with_columns(title=pl.lit(" ".join(
        w if w != word else "" for w in "red dress".split(" "))))
    support = (product_scores(shade, products)[head][0, col]
               - product_scores(shade, occluded)[head][0, col])
    assert tagged["explanation_support"][0] == pytest.approx(support, abs=1e-5)
    # without the feature words the same occlusion measures another support
    plain = (product_scores(bundle, products)[head][0, col]
             - product_scores(bundle, occluded)[head][0, col])
    assert abs(plain - support) > 1e-3, (plain, support)
