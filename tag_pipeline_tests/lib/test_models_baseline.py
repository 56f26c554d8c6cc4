"""The TF-IDF baseline trains on the tiny catalog and scores in the tagger's shapes."""

from __future__ import annotations

import numpy as np
import polars as pl

from tag_pipeline.lib.models.baseline import (
    baseline_scores,
    calibrate,
    cross_texts,
    make_vectorizer,
    train_baseline,
    words_of,
)
from tag_pipeline.lib.models.catalog_features import FEATURE_TEXT_COLUMN
from tag_pipeline.lib.models.labels import build_label_space, encode_labels
from tag_pipeline.lib.models.scoring import apply_thresholds, evaluate_heads, tune_thresholds
from tag_pipeline.lib.models.text import product_texts
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


def _collections(n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A catalog where a product's season is its brand's collection of its year (brand A sold
    a fall line in 2011 and a summer line in 2012, brand B the other way round) and its colour
    is a word of its title: the season needs brand x year, the colour does not."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for i in range(n):
        brand, year = rng.choice(["acme", "borealis"]), int(rng.choice([2011, 2012]))
        colour = str(rng.choice(["red", "blue", "green"]))
        season = "Fall" if (brand == "acme") == (year == 2011) else "Summer"
        pid = f"{seed}-{i}"
        rows.append({"product_id": pid, "title": f"{brand} {colour} shirt no{i % 7}",
                     "description": "", "image_path": None,
                     FEATURE_TEXT_COLUMN: f"year_{year}"})
        labels += [{"product_id": pid, "tag": season, "tag_type": "scene", "facet": "season"},
                   {"product_id": pid, "tag": colour.title(), "tag_type": "attribute",
                    "facet": "colour"}]
    return pl.DataFrame(rows), pl.DataFrame(labels)


def _splits(make, sizes: tuple[int, int, int]):
    """Train, validation and test products from ``make(n, seed)`` (seeds 1, 2, 3), the label
    space learned on train and each split's targets: (frames, space, targets)."""
    made = [make(n, seed=seed) for seed, n in enumerate(sizes, start=1)]
    space = build_label_space(made[0][1], made[0][0]["product_id"], min_support=3)
    return ([frame for frame, _ in made], space,
            [encode_labels(labels, frame["product_id"], space) for frame, labels in made])


def test_feature_crosses_learn_what_words_alone_cannot_and_only_where_they_gain():
    (train, val, test), space, (y_train, y_val, y_test) = _splits(_collections, (400, 200, 200))

    def accuracy(model, head):
        scores = baseline_scores(model, test)[head]
        return float((scores.argmax(1) == y_test[head].argmax(1)).mean())

    plain = calibrate(train_baseline(train, y_train, space, min_df=1), val, y_val)
    crossed = calibrate(train_baseline(train, y_train, space, min_df=1, crosses=True), val,
                        y_val)
    assert plain.cross_vectorizer is None and not plain.cross_classifiers
    # brand x year is an exclusive or: no weighting of the words alone gets it
    assert accuracy(plain, "scene:season") < 0.8
    assert accuracy(crossed, "scene:season") == 1.0
    # validation chose the crosses for the season only; the colour keeps its plain model
    assert set(crossed.cross_classifiers) == {"scene:season"}
    plain_obj, crossed_obj = crossed.cross_selection["scene:season"]
    assert crossed_obj > plain_obj
    assert accuracy(crossed, "attribute:colour") == accuracy(plain, "attribute:colour") == 1.0
    # a catalog without feature words has nothing to cross
    bare = train.with_columns(pl.lit("").alias(FEATURE_TEXT_COLUMN))
    assert train_baseline(bare, y_train, space, min_df=1, crosses=True).cross_vectorizer is None
    assert cross_texts(train[:1])[0].startswith("year_")
    assert "year_2011*acme" in cross_texts(train.filter(pl.col("title").str.starts_with(
        "acme")).filter(pl.col(FEATURE_TEXT_COLUMN) == "year_2011"))[0].split()


def test_a_model_pickled_before_the_crosses_loads_and_scores(tmp_path):
    import joblib

    train, labels = _collections(60, seed=4)
    space = build_label_space(labels, train["product_id"], min_support=3)
    model = train_baseline(train, encode_labels(labels, train["product_id"], space), space,
                           min_df=1)
    expected = baseline_scores(model, train)
    for name in ("cross_vectorizer", "cross_weight", "cross_classifiers", "cross_selection"):
        del model.__dict__[name]  # as a bundle written by an earlier version holds it
    joblib.dump(model, tmp_path / "linear.joblib")
    loaded = joblib.load(tmp_path / "linear.joblib")
    assert loaded.cross_classifiers == {} and loaded.cross_vectorizer is None
    for head, scores in baseline_scores(loaded, train).items():
        assert np.allclose(scores, expected[head])


def _reviews(n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Chinese reviews with no spaces, each one clause of random filler characters with its
    category's character somewhere inside (鞋 shoes, 表 watch, 包 bag)."""
    rng = np.random.default_rng(seed)
    filler = list("的了很好不是我们买东西快递服务质量一般满意价格便宜还会再来")
    rows, labels = [], []
    for i in range(n):
        key = str(rng.choice(["鞋", "表", "包"]))
        chars = list(rng.choice(filler, size=14))
        chars.insert(int(rng.integers(0, 15)), key)
        pid = f"{seed}-{i}"
        rows.append({"product_id": pid, "title": "".join(chars), "description": "",
                     "image_path": None})
        labels.append({"product_id": pid, "tag": {"鞋": "Shoes", "表": "Watch", "包": "Bag"}[key],
                       "tag_type": "category", "facet": "cat"})
    return pl.DataFrame(rows), pl.DataFrame(labels)


def test_the_word_analyzer_reads_each_chinese_character_as_a_word():
    assert words_of("Nike运动鞋 RED").split() == ["nike", "运", "动", "鞋", "red"]
    word = make_vectorizer(min_df=1).transformer_list[0][1].fit(["男士黑色运动鞋", "Nike Air"])
    assert {"鞋", "运 动", "nike", "nike air"} <= set(word.vocabulary_)

    # a category carried by one character inside a spaceless clause: the character unigram
    # finds it (char_wb n-grams alone see the clause as one word, and its bigrams with the
    # key character are each rare)
    train, train_labels = _reviews(300, seed=1)
    test, test_labels = _reviews(200, seed=2)
    space = build_label_space(train_labels, train["product_id"], min_support=3)
    model = train_baseline(train, encode_labels(train_labels, train["product_id"], space), space)
    truth = encode_labels(test_labels, test["product_id"], space)["category:cat"].argmax(1)
    scores = baseline_scores(model, test)["category:cat"]
    assert float((scores.argmax(1) == truth).mean()) >= 0.97


def _opinions(n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Reviews of a three-valued category whose two-valued sentiment hangs on one of 150 rare
    polar words per side, among 20 of 1,000 filler words."""
    rng = np.random.default_rng(seed)
    good = [f"good{i}" for i in range(150)]
    bad = [f"bad{i}" for i in range(150)]
    filler = [f"w{i}" for i in range(1000)]
    rows, labels = [], []
    for i in range(n):
        positive = bool(rng.random() < 0.6)
        cat = str(rng.choice(["shoe", "bag", "watch"]))
        words = list(rng.choice(filler, size=20)) + [cat]
        words.insert(int(rng.integers(0, 21)), str(rng.choice(good if positive else bad)))
        pid = f"{seed}-{i}"
        rows.append({"product_id": pid, "title": " ".join(words), "description": "",
                     "image_path": None})
        labels += [{"product_id": pid, "tag": "Positive" if positive else "Negative",
                    "tag_type": "style", "facet": "sentiment"},
                   {"product_id": pid, "tag": cat.title(), "tag_type": "category",
                    "facet": "cat"}]
    return pl.DataFrame(rows), pl.DataFrame(labels)


def test_nb_svm_candidates_are_two_class_heads_kept_only_where_validation_gains(tmp_path):
    import joblib

    (train, val, test), space, (y_train, y_val, y_test) = _splits(_opinions, (500, 300, 300))
    sentiment = "style:sentiment"
    model = train_baseline(train, y_train, space, min_df=1, nb=True)
    # only the two-class head gets a candidate; the baseline (nb off) gets none
    assert set(model.nb_classifiers) == {sentiment}
    plain = calibrate(train_baseline(train, y_train, space, min_df=1), val, y_val)
    assert not plain.nb_classifiers
    ratio, _ = model.nb_classifiers[sentiment]
    assert ratio.shape == (len(model.vectorizer.transformer_list[0][1].vocabulary_)
                           + len(model.vectorizer.transformer_list[1][1].vocabulary_),)
    model = calibrate(model, val, y_val)
    before, with_nb = model.nb_selection[sentiment]
    n_val = val.height
    # kept exactly when it beats the head's other classifier by more than one product's worth
    assert (sentiment in model.nb_classifiers) == (with_nb - before > 1.0 / n_val)
    # here, where the rare polar words carry the sentiment, it is kept, and it gains on test
    assert sentiment in model.nb_classifiers
    truth = y_test[sentiment].argmax(1)

    def accuracy(m):
        return float((baseline_scores(m, test)[sentiment].argmax(1) == truth).mean())
    assert accuracy(model) > accuracy(plain)
    # the head is scored by the NB-SVM: its decisions are the NB-SVM's own
    ratio, clf = model.nb_classifiers[sentiment]
    x = model.vectorizer.transform(product_texts(test))
    own = clf.classes_[(clf.decision_function(x.multiply(ratio[None, :]).tocsr()) > 0)
                       .astype(int)]
    np.testing.assert_array_equal(baseline_scores(model, test)[sentiment].argmax(1), own)
    # a model pickled before the NB-SVMs existed loads without them
    expected = baseline_scores(model, test)
    for name in ("nb_classifiers", "nb_selection"):
        del model.__dict__[name]
    joblib.dump(model, tmp_path / "linear.joblib")
    loaded = joblib.load(tmp_path / "linear.joblib")
    assert loaded.nb_classifiers == {} and loaded.nb_selection == {}
    assert np.allclose(baseline_scores(loaded, test)["category:cat"], expected["category:cat"])
