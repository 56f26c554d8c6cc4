"""Tagger bundles on disk, tagging raw rows, and the pyfunc model served by registry alias."""

from __future__ import annotations

import os
import re
import shutil
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tag_pipeline.lib.models.bundle import BUNDLE_FILES, TaggerBundle, load_bundle, save_bundle
from tag_pipeline.lib.models.dataset import make_dataset
from tag_pipeline.lib.models.inputs import model_inputs
from tag_pipeline.lib.models.labels import TAG_TYPES
from tag_pipeline.lib.models.pyfunc import log_tagger
from tag_pipeline.lib.models.serving import TAG_SCHEMA, product_scores, tag_frame
from tag_pipeline.lib.models.tagger import (
    TaggerConfig,
    fold_batch_norm,
    scores_to_tags,
)
from tag_pipeline.lib.models.text import RESERVED_TOKENS, product_texts
from tag_pipeline_tests.lib.models_data import AS_TRAINED, TINY_TAGGER, products_frame

# these tests train taggers or refiners, or run whole jobs (make test-fast skips them)
pytestmark = pytest.mark.slow

TINY = TaggerConfig(**TINY_TAGGER)
NAME = "product_tagger"
OUTPUT_COLUMNS = list(TAG_SCHEMA)


@pytest.fixture(scope="module")
def images(tiny_images) -> dict[str, Path]:
    return tiny_images


@pytest.fixture(scope="module")
def bundle_dir(tiny_tagger_dir) -> Path:
    """The session's tiny tagger as ``save_bundle`` wrote it (read only)."""
    return tiny_tagger_dir / "bundle"


@pytest.fixture(scope="module")
def loaded(bundle_dir) -> TaggerBundle:
    return load_bundle(bundle_dir)


def raw_rows(images: dict[str, Path]) -> pd.DataFrame:
    """English, Chinese, an image path, the same image as bytes, a corrupt and a missing file."""
    return pd.DataFrame({
        "product_id": ["en", "zh", "path", "bytes", "corrupt", "missing"],
        "title": ["Men Blue Printed Shirt", "红色 连衣裙", "Men Blue Shirt", "Men Blue Shirt",
                  "Men Blue Shirt", "Men Blue Shirt"],
        "description": ["cotton", None, "", "", "", ""],
        "image_path": [None, None, str(images["blue"]), None, str(images["corrupt"]),
                       str(images["missing"])],
        "image_bytes": [None, None, None, images["blue"].read_bytes(), None, None],
    })


def assert_valid_tags(tags: pd.DataFrame, product_ids: list[str], served: bool = False
                      ) -> None:
    assert list(tags.columns) == OUTPUT_COLUMNS + (["warning"] if served else [])
    assert ((tags["score"] >= 0) & (tags["score"] <= 1)).all()
    assert set(tags["tag_type"]) <= set(TAG_TYPES)
    # the softmax floor is 0: every product gets its category, whatever the input
    categories = tags[tags["tag_type"] == "category"]
    assert sorted(categories["product_id"].unique()) == sorted(product_ids)


def as_polars(tags: pl.DataFrame | pd.DataFrame) -> pl.DataFrame:
    return tags if isinstance(tags, pl.DataFrame) else pl.DataFrame(tags.to_dict("list"))


def rows_of(tags: pl.DataFrame | pd.DataFrame, product_id: str) -> pl.DataFrame:
    return as_polars(tags).filter(pl.col("product_id") == product_id).drop(
        "product_id", "warning", strict=False)


def assert_same_tags(a: pl.DataFrame | pd.DataFrame, b: pl.DataFrame | pd.DataFrame) -> None:
    """Same tags in the same order; scores equal up to float32 rounding (a product's scores
    may differ in the last bit with its position in a batch)."""
    a, b = as_polars(a).drop("warning", strict=False), as_polars(b).drop("warning", strict=False)
    assert a.drop("score").rows() == b.drop("score").rows()
    np.testing.assert_allclose(a["score"].to_numpy(), b["score"].to_numpy(), rtol=0, atol=1e-6)


def test_bundle_round_trip_gives_identical_scores(tiny_tagger_dir, bundle_dir, loaded,
                                                  tmp_path):
    assert sorted(p.name for p in bundle_dir.iterdir()) == sorted(BUNDLE_FILES)
    lines = (bundle_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert tuple(lines[:4]) == RESERVED_TOKENS and "红" in lines and lines[-1] == ""
    assert loaded.config == TINY
    # what the model gave right after training, before it was saved
    as_trained = np.load(tiny_tagger_dir / AS_TRAINED)
    assert {k.split("|", 1)[1] for k in as_trained.files if k.startswith("thresholds|")} == set(
        loaded.thresholds)
    for name, thr in loaded.thresholds.items():
        np.testing.assert_array_equal(thr, as_trained[f"thresholds|{name}"])

    products = products_frame()
    batch = model_inputs(loaded, products)
    after = product_scores(loaded, products)
    assert after.keys() == set(loaded.space.head_names)
    for name in after:
        np.testing.assert_array_equal(after[name], as_trained[f"scores|{name}"])
    # saved again and loaded again: the same files, vocabulary, label space and tags
    again = load_bundle(save_bundle(loaded, tmp_path / "again"))
    assert again.vocab == loaded.vocab and again.space == loaded.space
    assert tag_frame(again, products).equals(tag_frame(loaded, products))
    # traced (as for large frames) or eager, the tokens and scores agree
    again.compile()
    np.testing.assert_array_equal(again.tokenize(product_texts(products)), batch["tokens"])
    compiled = product_scores(again, products)
    for name in after:
        np.testing.assert_allclose(compiled[name], after[name], rtol=0, atol=1e-6)


def test_load_bundle_names_the_folder_and_the_missing_file(bundle_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*does not exist"):
        load_bundle(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(bundle_dir, broken)
    (broken / "thresholds.json").unlink()
    with pytest.raises(FileNotFoundError, match=f"{re.escape(str(broken))}.*thresholds.json"):
        load_bundle(broken)
    (broken / "thresholds.json").write_text('{"style": [0.5]}', encoding="utf-8")
    with pytest.raises(ValueError, match=f"{re.escape(str(broken))}.*thresholds are for heads"):
        load_bundle(broken)
    (broken / "thresholds.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="thresholds.json is not valid UTF-8 JSON"):
        load_bundle(broken)


def test_inference_preprocessing_equals_training_pipeline(loaded, images):
    products = products_frame({0: str(images["blue"]), 8: str(images["black"]),
                               16: str(images["corrupt"]), 17: str(images["missing"])})
    expected = next(iter(make_dataset(products, None, loaded.tokenizer, 16, products.height)))
    got = model_inputs(loaded, products)
    assert got.keys() == expected.keys() | {"has_text"}
    assert got["has_text"].all()  # every product here has a title
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name].numpy())
    assert got["image_mask"].ravel()[[0, 1, 8, 16, 17]].tolist() == [1.0, 0.0, 1.0, 0.0, 0.0]
    # imageless rows skip the CNN, rows with an image go through the CNN with its batch norms
    # folded into the convolutions; the scores of both still equal the whole model's
    assert loaded.uses_text_shortcut and loaded.uses_folded_cnn
    scores, _ = loaded.network(got)
    whole = loaded.model({k: got[k] for k in expected}, training=False)
    for head in loaded.space.heads:
        np.testing.assert_allclose(scores[head.name], whole[head.output_name], rtol=0, atol=1e-6)
    folded = fold_batch_norm(loaded.model, loaded.space, loaded.config)
    assert not [layer.name for layer in folded.layers if layer.name.startswith("bn")]
    assert folded.count_params() < loaded.model.count_params()


def test_tag_frame_reads_raw_rows(loaded, images):
    raw = raw_rows(images)
    products = pl.DataFrame(raw.drop(columns=["product_id"]).to_dict("list"),
                            schema={"title": pl.Utf8, "description": pl.Utf8,
                                    "image_path": pl.Utf8, "image_bytes": pl.Binary})
    tags = tag_frame(loaded, products)
    assert tags.schema == pl.Schema(TAG_SCHEMA)
    # without product_id the row number names the product
    assert_valid_tags(tags.to_pandas(), [str(i) for i in range(6)])
    # Chinese text is tokenized with the vocabulary, not as unknown tokens
    ids = np.asarray(loaded.tokenizer(["红色 连衣裙"]))[0]
    assert loaded.vocab.index("红") in ids
    # bytes decode like the same file on disk; corrupt and missing images are just ignored
    assert_same_tags(rows_of(tags, "3"), rows_of(tags, "2"))
    assert_same_tags(rows_of(tags, "4"), rows_of(tags, "5"))
    assert not rows_of(tags, "2").equals(rows_of(tags, "4"))
    no_image = tag_frame(loaded, pl.DataFrame({"title": ["Men Blue Shirt"]}))
    assert_same_tags(rows_of(no_image, "0"), rows_of(tags, "4"))
    # streaming in small batches changes nothing
    assert_same_tags(tag_frame(loaded, products, batch_size=2), tags)
    # the rows, in order, are scores_to_tags of the same scores (heads in model order, best
    # score first within a head)
    listed = scores_to_tags(product_scores(loaded, products), loaded.thresholds,
                            loaded.space)
    assert tags.rows() == [(str(i), tag, tag_type, facet, score)
                           for i, product in enumerate(listed)
                           for tag_type, facet, tag, score in product]

    empty = tag_frame(loaded, products.head(0))
    assert empty.height == 0 and empty.schema == pl.Schema(TAG_SCHEMA)
    with pytest.raises(ValueError, match="required column 'title'"):
        tag_frame(loaded, products.drop("title"))
    with pytest.raises(ValueError, match="'image_bytes' must hold raw bytes"):
        tag_frame(loaded, pl.DataFrame({"title": ["a"], "image_bytes": ["not bytes"]}))


def test_logged_model_is_served_by_alias(bundle_dir, loaded, images, tmp_path, monkeypatch,
                                         caplog):
    repo_dir_before = sorted(os.listdir())
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # restored by monkeypatch afterwards
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment(
            "tagger", artifact_location=(tmp_path / "artifacts").as_uri())
        example = raw_rows(images).head(2)
        with mlflow.start_run(experiment_id=experiment):
            info = log_tagger(bundle_dir, name="model", input_example=example)
        # MLflow replays the input example through its JSON serving format and only warns
        assert "Failed to validate serving input" not in caplog.text
        with pytest.raises(RuntimeError, match="active MLflow run"):
            log_tagger(bundle_dir)
        registered = mlflow.register_model(info.model_uri, NAME)
        MlflowClient().set_registered_model_alias(NAME, "champion", registered.version)

        root = images["blue"].parent
        served = mlflow.pyfunc.load_model(f"models:/{NAME}@champion",
                                          model_config={"image_root": str(root)})
        inputs = served.metadata.get_input_schema()
        assert inputs.required_input_names() == ["title"]
        assert set(inputs.optional_input_names()) == {"product_id", "description", "image_path",
                                                      "image_bytes"}
        assert served.metadata.get_output_schema().input_names()[-1] == "warning"
        raw = raw_rows(images).drop(index=5)
        tags = served.predict(raw)
        assert_valid_tags(tags, ["en", "zh", "path", "bytes", "corrupt"], served=True)
        assert tags["warning"].isna().all()  # every path lies in the image root
        assert_same_tags(rows_of(tags, "bytes"), rows_of(tags, "path"))
        direct = tag_frame(loaded, pl.DataFrame(raw.to_dict("list"),
                                                schema_overrides={"image_bytes": pl.Binary}))
        assert_same_tags(tags, direct)
        assert served.predict(pd.DataFrame({"title": ["红色 连衣裙"]}))["product_id"].eq("0").all()

        # the one image-path rule: a real image outside the root is never opened; the row
        # gets a warning and the tags it gets without an image
        outside = tmp_path / "elsewhere" / "blue.png"
        outside.parent.mkdir()
        outside.write_bytes(images["blue"].read_bytes())
        probe = pd.DataFrame({"product_id": ["out", "up", "none"],
                              "title": ["Men Blue Shirt"] * 3, "description": [""] * 3,
                              "image_path": [str(outside), f"../{outside.parent.name}/blue.png",
                                             None]})
        guarded = served.predict(probe)
        assert_same_tags(rows_of(guarded, "out"), rows_of(guarded, "none"))
        assert_same_tags(rows_of(guarded, "up"), rows_of(guarded, "none"))
        assert not rows_of(guarded, "out").equals(rows_of(tags, "path"))
        warnings = guarded.groupby("product_id")["warning"].first()
        assert "resolves outside the image folder" in warnings["out"]
        assert "resolves outside the image folder" in warnings["up"]
        assert warnings.isna()["none"]
        # with no image root configured, no path is opened at all: only bytes are read
        unrooted = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
        plain = unrooted.predict(raw)
        assert_same_tags(rows_of(plain, "path"), rows_of(plain, "corrupt"))
        assert_same_tags(rows_of(plain, "bytes"), rows_of(tags, "bytes"))
        assert "no image root" in plain.groupby("product_id")["warning"].first()["path"]

        with pytest.raises(MlflowException, match="missing inputs.*title"):
            served.predict(pd.DataFrame({"name": ["红色 连衣裙"]}))
        # past MLflow's schema check, the model itself names the column
        with pytest.raises(ValueError, match="'title'"):
            served.unwrap_python_model().predict(None, pd.DataFrame({"name": ["x"]}))
        with pytest.raises(MlflowException, match="nope"):
            mlflow.pyfunc.load_model(f"models:/{NAME}@nope")

        # the served environment gets tag_pipeline from the model and pinned requirements
        model_dir = next((tmp_path / "artifacts").rglob("MLmodel")).parent
        assert (model_dir / "code/tag_pipeline/lib/models/bundle.py").is_file()
        assert not list((model_dir / "code").rglob("__pycache__"))
        requirements = (model_dir / "requirements.txt").read_text().split()
        assert f"tensorflow=={version('tensorflow')}" in requirements
        assert f"keras-hub=={version('keras-hub')}" in requirements
    finally:
        mlflow.set_tracking_uri(None)  # unset again; the restored environment decides
    assert sorted(os.listdir()) == repo_dir_before
