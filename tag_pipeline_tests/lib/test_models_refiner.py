"""The GAN tag refiner: valid and deterministic tag sets, tag-set statistics, the gate, files
and the pyfunc model that tags raw rows with the tagger and the refiner together."""

from __future__ import annotations

import dataclasses
import os

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest

from tag_pipeline.lib.models.bundle import TaggerBundle, save_bundle
from tag_pipeline.lib.models.inputs import model_inputs
from tag_pipeline.lib.models.labels import (
    SOFTMAX,
    Head,
    LabelSpace,
    TagClass,
    encode_labels,
)
from tag_pipeline.lib.models.refiner import (
    Ablation,
    Compatibility,
    RefinerConfig,
    ablate,
    build_compatibility,
    load_refiner,
    refine_decisions,
    refine_scores,
    refiner_gate,
    repair,
    save_refiner,
    select_refined_heads,
    tag_set_stats,
    train_refiner,
)
from tag_pipeline.lib.models.refiner_pyfunc import log_refiner
from tag_pipeline.lib.models.scoring import apply_thresholds
from tag_pipeline.lib.models.serving import (
    SOURCED_SCHEMA,
    TAG_SCHEMA,
    product_scores,
    tag,
    tagger_outputs,
)
from tag_pipeline.lib.models.tagger import TaggerConfig
from tag_pipeline_tests.lib.models_data import TINY_TAGGER, labels_frame, products_frame

# these tests train taggers or refiners, or run whole jobs (make test-fast skips them)
pytestmark = pytest.mark.slow

TINY = TaggerConfig(**TINY_TAGGER)
TINY_REFINER = RefinerConfig(noise_dim=4, hidden_dim=16, epochs=2, batch_size=8,
                             noise_samples=3, seed=7)


@pytest.fixture(scope="module")
def tagger(tiny_tagger) -> TaggerBundle:
    """The session's tiny tagger (one epoch on the bilingual catalog)."""
    return tiny_tagger


@pytest.fixture(scope="module")
def splits(tagger) -> dict[str, tuple]:
    """(embeddings, scores, targets) of train (first 24 products), val (the rest) and "test"
    (every product: enough rows for the mechanics, not a real held-out score)."""
    products, labels = products_frame(), labels_frame()
    out = {}
    for name, frame in (("train", products[:24]), ("val", products[24:]), ("test", products)):
        emb, scores = tagger_outputs(tagger, frame, batch_size=7)
        out[name] = (emb, scores, encode_labels(labels, frame["product_id"], tagger.space))
    return out


@pytest.fixture(scope="module")
def refiner(tagger, splits):
    return train_refiner(*splits["train"], tagger.space, TINY_REFINER, val=splits["val"])


def test_tagger_outputs_are_the_bundle_scores_and_fused_embedding(tagger, splits):
    emb, scores, _ = splits["test"]
    products = products_frame()
    assert emb.shape == (products.height, TINY.fused_dim) and (emb >= 0).all()  # relu layer
    direct = product_scores(tagger, products)
    assert scores.keys() == direct.keys()
    for name in direct:
        np.testing.assert_allclose(scores[name], direct[name], rtol=0, atol=1e-6)
    # the serving path's embedding (folded CNN, text-only shortcut) is the trained model's
    # own "fused" layer output
    import keras

    fused = keras.Model(tagger.model.input, tagger.model.get_layer("fused").output)
    x = model_inputs(tagger, products)
    as_trained = np.asarray(fused({k: x[k] for k in ("tokens", "image", "image_mask")},
                                  training=False))
    np.testing.assert_allclose(emb, as_trained, rtol=0, atol=1e-5)


def test_refined_outputs_are_valid_deterministic_tag_sets(refiner, splits, tagger):
    emb, scores, _ = splits["test"]
    assert set(refiner.history) >= {"critic", "adversarial", "supervised", "val_supervised"}
    assert len(refiner.history["supervised"]) == TINY_REFINER.epochs
    assert all(np.isfinite(refiner.history["critic"]))
    first, second = refine_scores(refiner, emb, scores), refine_scores(refiner, emb, scores)
    decisions = refine_decisions(refiner, emb, scores)
    for head in tagger.space.heads:
        s = first[head.name]
        np.testing.assert_array_equal(s, second[head.name])
        assert s.shape == scores[head.name].shape and ((s >= 0) & (s <= 1)).all()
        d = decisions[head.name]
        assert set(np.unique(d)) <= {0, 1}
        if head.kind == SOFTMAX:
            np.testing.assert_allclose(s.sum(axis=1), 1.0, atol=1e-5)
            assert (d.sum(axis=1) <= 1).all()
    # the consistency repair leaves no incompatible pair
    stats = tag_set_stats(decisions, tagger.space, refiner.compatibility)
    assert stats["inconsistency_rate"] == 0.0
    # one product alone gets the scores it gets in a batch
    one = refine_scores(refiner, emb[3:4], {k: v[3:4] for k, v in scores.items()})
    for name in one:
        np.testing.assert_allclose(one[name], first[name][3:4], rtol=0, atol=1e-6)


def test_an_untrained_refiner_returns_the_tagger_scores(tagger, splits):
    zero = RefinerConfig(**{**TINY_REFINER.to_dict(), "epochs": 1, "learning_rate": 1e-9})
    untouched = train_refiner(*splits["train"], tagger.space, zero, val=splits["val"])
    emb, scores, _ = splits["test"]
    refined = refine_scores(untouched, emb, scores)
    for name in scores:
        np.testing.assert_allclose(refined[name], scores[name], rtol=0, atol=1e-4)


def test_config_round_trip_and_errors_name_the_setting(tagger, splits):
    assert RefinerConfig.from_dict(TINY_REFINER.to_dict()) == TINY_REFINER
    with pytest.raises(ValueError, match="unknown RefinerConfig setting.*'bogus'"):
        RefinerConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="RefinerConfig.critic_steps"):
        train_refiner(*splits["train"], tagger.space, RefinerConfig(critic_steps=0),
                      val=splits["val"])
    emb, scores, targets = splits["train"]
    with pytest.raises(ValueError, match="training split: 3 embeddings but 24 score rows"):
        train_refiner(emb[:3], scores, targets, tagger.space, TINY_REFINER, val=splits["val"])


def _hand_space() -> LabelSpace:
    """A softmax head colour (red, blue) and a sigmoid head style (printed, plain, slim)."""
    colour = Head(name="attribute:colour", kind=SOFTMAX, tag_type="attribute",
                  facets=("colour",), n_labeled=8,
                  classes=(TagClass("colour", "red", 4), TagClass("colour", "blue", 4)))
    style = Head(name="style", kind="sigmoid", tag_type="style", facets=("style",),
                 n_labeled=8, classes=(TagClass("style", "printed", 4),
                                       TagClass("style", "plain", 4),
                                       TagClass("style", "slim", 2)))
    return LabelSpace(heads=(colour, style), rare_tags=(), min_support=1, n_train=8)


def test_compatibility_and_tag_set_stats_on_a_hand_made_example():
    space = _hand_space()
    # 8 training products: printed and plain never together though 4 * 4 / 8 = 2 expected;
    # slim and blue neither, but only 2 * 4 / 8 = 1 was expected
    colour = np.array([[1, 0], [1, 0], [0, 1], [0, 1]] * 2, np.float32)
    style = np.array([[1, 0, 1], [1, 0, 0], [1, 0, 0], [1, 0, 0],
                      [0, 1, 1], [0, 1, 0], [0, 1, 0], [0, 1, 0]], np.float32)
    targets = {"attribute:colour": colour, "style": style}
    compat = build_compatibility(targets, space, min_expected=2.0)
    assert compat.pairs.tolist() == [[2, 3]]  # printed x plain (columns: red blue printed ...)
    assert compat.single_valued == ((0, 1),)  # red x blue
    assert build_compatibility(targets, space, min_expected=2.5).pairs.size == 0

    decisions = {"attribute:colour": np.array([[1, 0], [0, 1], [1, 1], [0, 0]], np.uint8),
                 "style": np.array([[1, 1, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]], np.uint8)}
    stats = tag_set_stats(decisions, space, compat)
    # product 0: printed+plain, product 2: red+blue; tags red blue printed plain slim all used
    assert stats == {"inconsistency_rate": 0.5, "coverage": 1.0, "tags_per_product": 1.75}
    scores = {"attribute:colour": np.array([[.9, .1], [.2, .8], [.6, .4], [.5, .5]]),
              "style": np.array([[.7, .8, .1], [.1, .1, .9], [.1, .1, .1], [.1, .1, .1]])}
    fixed = repair(decisions, scores, space, compat)
    # the lower-scored tag of each incompatible pair goes, the rest stays
    assert fixed["style"].tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]]
    assert fixed["attribute:colour"].tolist() == [[1, 0], [0, 1], [1, 0], [0, 0]]
    after = tag_set_stats(fixed, space, compat)
    # printed is no longer given anywhere: 4 of 5 tags used, 5 tags on 4 products
    assert after == {"inconsistency_rate": 0.0, "coverage": 0.8, "tags_per_product": 1.25}
    round_trip = Compatibility.from_dict(compat.to_dict())
    assert round_trip.pairs.tolist() == compat.pairs.tolist()
    assert round_trip.single_valued == compat.single_valued


def test_gate_refuses_a_refiner_that_lowers_micro_f1_beyond_tolerance(refiner, tagger, splits):
    rows = {"tagger": {"micro_f1": 0.60}, "tagger+refiner": {"micro_f1": 0.596}}
    ok, reason = refiner_gate(Ablation(rows=rows), tolerance=0.005)
    assert ok and "0.5960" in reason and "0.6000" in reason
    rows["tagger+refiner"]["micro_f1"] = 0.59
    ok, reason = refiner_gate(Ablation(rows=rows), tolerance=0.005)
    assert not ok and "0.5900" in reason and "0.6000" in reason and "refused" in reason
    assert Ablation(rows=rows).delta("micro_f1") == pytest.approx(-0.01)

    # a real refiner made to give almost nothing: thresholds of 0.99 on every sigmoid tag and
    # a softmax floor of 0.99
    emb, scores, targets = splits["test"]
    honest = ablate(refiner, tagger.thresholds, emb, scores, targets)
    assert set(honest.rows) == {"tagger", "tagger+repair", "refiner-no-repair",
                                "tagger+refiner"}
    table = honest.table()
    assert table["variant"].to_list() == list(honest.rows)
    assert {"micro_f1", "ndcg_at_5", "inconsistency_rate", "coverage"} <= set(table.columns)
    assert honest.rows["tagger"]["micro_f1"] > 0.1
    crippled = type(refiner)(**{**refiner.__dict__, "thresholds": {
        k: np.full_like(v, 0.99) for k, v in refiner.thresholds.items()}})
    bad = ablate(crippled, tagger.thresholds, emb, scores, targets)
    assert bad.delta("micro_f1") < -0.05
    ok, reason = refiner_gate(bad)
    assert not ok and f"{bad.rows['tagger']['micro_f1']:.4f}" in reason
    # the tagger's own row does not depend on the refiner
    assert bad.rows["tagger"] == honest.rows["tagger"]


def test_gate_refuses_a_refiner_that_changes_nothing(refiner, tagger, splits):
    """A refiner that refines no head, with the tagger's thresholds and no repair, serves
    exactly the tagger's tags and scores: the gate says so and does not apply it."""
    emb, scores, targets = splits["test"]
    idle = dataclasses.replace(refiner, refined_heads=(), thresholds=dict(tagger.thresholds),
                               config=dataclasses.replace(refiner.config, repair=False))
    ablation = ablate(idle, tagger.thresholds, emb, scores, targets)
    assert ablation.n_changed == ablation.n_tags_changed == 0
    assert ablation.delta("micro_f1") == 0.0
    ok, reason = refiner_gate(ablation)
    assert not ok
    assert f"none of the {len(emb)} test products" in reason and "nothing to apply" in reason
    # the trained refiner changes some products, and the reason counts them
    working = ablate(refiner, tagger.thresholds, emb, scores, targets)
    assert 0 < working.n_changed <= len(emb) and working.n_tags_changed <= working.n_changed
    reason = refiner_gate(working, tolerance=1.0)[1]
    assert (f"it changes the tags of {working.n_tags_changed} and the tags or scores of "
            f"{working.n_changed} of {len(emb)} test products") in reason
    # the delta with its paired bootstrap interval over the same test products
    assert working.difference.difference == pytest.approx(working.delta("micro_f1"), abs=1e-12)
    assert working.difference.low <= working.difference.difference <= working.difference.high
    assert f"the delta's {working.difference.interval()}" in reason
    assert (ablation.difference.low, ablation.difference.high) == (0.0, 0.0)


def test_save_load_round_trip_gives_identical_refined_scores(refiner, splits, tmp_path):
    folder = save_refiner(refiner, tmp_path / "refiner")
    loaded = load_refiner(folder)
    assert loaded.config == refiner.config and loaded.space == refiner.space
    assert loaded.compatibility.pairs.tolist() == refiner.compatibility.pairs.tolist()
    emb, scores, _ = splits["test"]
    before, after = refine_scores(refiner, emb, scores), refine_scores(loaded, emb, scores)
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])
        np.testing.assert_array_equal(loaded.thresholds[name], refiner.thresholds[name])
    (folder / "thresholds.json").unlink()
    with pytest.raises(FileNotFoundError, match="refiner folder .* lacks thresholds.json"):
        load_refiner(folder)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_refiner(tmp_path / "nowhere")


def test_select_refined_heads_keeps_only_heads_that_gain_on_validation():
    space = _hand_space()
    rng = np.random.default_rng(3)
    n = 60
    red = np.arange(n) % 2 == 0
    colour_truth = np.stack([red, ~red], axis=1).astype(np.float32)
    style_truth = (rng.random((n, 3)) < 0.4).astype(np.float32)
    truth = {"attribute:colour": colour_truth, "style": style_truth}
    wrong = np.arange(n) % 5 == 0  # the tagger gets a fifth of the colours wrong
    tagger_colour = np.where(wrong[:, None], 1 - colour_truth, colour_truth) * 0.8 + 0.1
    tagger = {"attribute:colour": tagger_colour, "style": style_truth * 0.8 + 0.1}
    refined = {"attribute:colour": colour_truth * 0.8 + 0.1,  # right everywhere: a real gain
               "style": rng.random((n, 3))}  # noise where the tagger was right: a loss
    assert select_refined_heads(tagger, refined, truth, space) == ("attribute:colour",)
    # a gain of one validation product (in one half of the rows only) is not enough, nor a
    # gain carried by one half of the rows
    one = colour_truth * 0.8 + 0.1
    one[wrong] = tagger_colour[wrong]
    one[np.flatnonzero(wrong)[0]] = colour_truth[np.flatnonzero(wrong)[0]] * 0.8 + 0.1
    assert select_refined_heads(tagger, {**refined, "attribute:colour": one}, truth,
                                space) == ()
    half = tagger_colour.copy()
    half[0::2] = colour_truth[0::2] * 0.8 + 0.1  # fixes only even rows
    half[1::2][wrong[1::2]] = 0.5  # ... and breaks none of the odd rows, but gains none there
    assert select_refined_heads(tagger, {**refined, "attribute:colour": half}, truth,
                                space) == ()


def test_a_refiner_that_chooses_heads_keeps_the_taggers_scores_elsewhere(tagger, splits,
                                                                         tmp_path):
    chosen = train_refiner(*splits["train"], tagger.space, TINY_REFINER, val=splits["val"],
                           tagger_thresholds=tagger.thresholds)
    assert chosen.refined_heads is not None
    # the choice is select_refined_heads on the validation split
    everything = dataclasses.replace(chosen, refined_heads=None)
    val_emb, val_scores, val_truth = splits["val"]
    assert chosen.refined_heads == select_refined_heads(
        val_scores, refine_scores(everything, val_emb, val_scores), val_truth, tagger.space,
        TINY_REFINER.head_macro_weight)
    emb, scores, _ = splits["test"]
    refined = refine_scores(chosen, emb, scores)
    for head in tagger.space.heads:
        if head.name not in chosen.refined_heads:
            np.testing.assert_array_equal(refined[head.name], scores[head.name])
            np.testing.assert_array_equal(chosen.thresholds[head.name],
                                          tagger.thresholds[head.name])
    loaded = load_refiner(save_refiner(chosen, tmp_path / "chosen"))
    assert loaded.refined_heads == chosen.refined_heads
    for name, value in refine_scores(loaded, emb, scores).items():
        np.testing.assert_array_equal(value, refined[name])


def test_refined_tags_mark_what_the_refiner_added(refiner, tagger):
    products = products_frame()
    tags = tag(tagger, products, refiner)
    assert tags.schema == pl.Schema(SOURCED_SCHEMA)
    assert list(tags.columns) == [*TAG_SCHEMA, "source"]
    assert set(tags["source"].unique()) <= {"model", "refiner"}
    emb, scores = tagger_outputs(tagger, products)
    decisions = refine_decisions(refiner, emb, scores)
    assert tags.height == sum(int(d.sum()) for d in decisions.values())
    tagger_dec = apply_thresholds(scores, tagger.thresholds, tagger.space)
    ids = products["product_id"].to_list()
    given = {(ids[r], head.classes[c].tag)
             for head in tagger.space.heads
             for r, c in zip(*np.nonzero(tagger_dec[head.name]), strict=True)}
    for row in tags.iter_rows(named=True):
        assert (row["source"] == "model") == ((row["product_id"], row["tag"]) in given)
    assert tags["product_id"].unique(maintain_order=True).to_list() == [
        i for i in ids if i in set(tags["product_id"])]


def test_logged_refiner_tags_raw_rows(refiner, tagger, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    refiner_dir = save_refiner(refiner, tmp_path / "refiner")
    bundle_dir = save_bundle(tagger, tmp_path / "tagger")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment(
            "refiner", artifact_location=(tmp_path / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = log_refiner(refiner_dir, bundle_dir)
        with pytest.raises(RuntimeError, match="active MLflow run"):
            log_refiner(refiner_dir, bundle_dir)
        served = mlflow.pyfunc.load_model(info.model_uri)
        raw = pd.DataFrame({"product_id": ["en", "zh"],
                            "title": ["Men Blue Printed Shirt", "女士红色印花衬衫"],
                            "description": ["cotton", None], "image_path": [None, None]})
        tags = served.predict(raw)
        assert list(tags.columns) == [*SOURCED_SCHEMA, "warning"]
        assert tags["warning"].isna().all()  # no image path to refuse
        assert set(tags["product_id"]) == {"en", "zh"}  # the softmax floor is 0
        assert ((tags["score"] >= 0) & (tags["score"] <= 1)).all()
        direct = tag(tagger, pl.DataFrame(raw.to_dict("list")), refiner)
        assert [tuple(r) for r in tags[["product_id", "tag", "source"]].values.tolist()] == (
            direct.select("product_id", "tag", "source").rows())
        np.testing.assert_allclose(tags["score"], direct["score"], atol=1e-6)
        model = served.unwrap_python_model()
        assert model.refiner.config == refiner.config
        assert model.bundle.space == tagger.space
        assert served.predict(pd.DataFrame({"title": ["男士黑色手表"]}))["product_id"].eq(
            "0").all()
        model_dir = next((tmp_path / "artifacts").rglob("MLmodel")).parent
        assert (model_dir / "code/tag_pipeline/lib/models/refiner.py").is_file()
    finally:
        mlflow.set_tracking_uri(None)
    assert not os.path.exists(tmp_path / "mlruns")
