"""The ``tag-pipeline`` subcommands against the session's trained project home (real DuckDB
warehouse, sqlite MLflow registry with a champion, Dagster instance).

Most calls run ``main(ARGS)`` in this process with the home's environment, so TensorFlow and
the model load once per session; ``test_console_script_*`` runs the installed script as a real
subprocess to check what a shell sees (exit code, one error line, no traceback)."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import mlflow.tracking._tracking_service.utils as tracking_utils
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from mlflow import MlflowClient

from tag_pipeline.lib.cli.evaluation import parse_labels
from tag_pipeline.lib.cli.files import InputFileError, ProductFile
from tag_pipeline.lib.models.labels import TAG_TYPES, Head, LabelSpace, TagClass
from tag_pipeline_tests.support import ProjectHome, csv_body, data_lines, home_env, run_cli

TAGGER = "tag_pipeline_tagger"
NOT_AN_IMAGE = b"\xff\xd8\xff\xe0 this is not a JPEG, only its first bytes are"


def run_script(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """The installed ``tag-pipeline`` console script as a real subprocess."""
    env = {k: v for k, v in env.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    script = Path(sys.executable).parent / "tag-pipeline"
    return subprocess.run([str(script), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, encoding="utf-8", timeout=600)


def last_error(result: subprocess.CompletedProcess) -> str:
    """The error line, after checking it is the only thing the CLI itself said."""
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def champion(home: ProjectHome) -> str:
    client = MlflowClient(tracking_uri=home.tracking_uri, registry_uri=home.tracking_uri)
    return str(client.get_model_version_by_alias(TAGGER, "champion").version)


def check_tags(tags: list[dict]) -> None:
    assert tags, "no tags"
    for tag in tags:
        assert tag["tag_type"] in TAG_TYPES, tag
        assert 0.0 <= tag["score"] <= 1.0, tag
        assert tag["tag"] and tag["facet"], tag
        assert "explanation" in tag


@pytest.fixture(scope="module")
def demo_image(trained_home: ProjectHome) -> Path:
    """A real product image from the demo landing files."""
    images = sorted((trained_home.home / "landing").rglob("*.jpg")) + sorted(
        (trained_home.home / "landing").rglob("*.png"))
    assert images, f"no demo image under {trained_home.home / 'landing'}"
    return images[0]


@pytest.fixture(scope="module")
def catalog_sample(trained_home: ProjectHome, tmp_path_factory) -> Path:
    """80 cleaned products with their labels from the warehouse, as a labelled CSV."""
    folder = tmp_path_factory.mktemp("sample")
    with duckdb.connect(str(trained_home.warehouse), read_only=True) as con:
        frame = con.sql("""
            SELECT p.product_id, p.title, p.description, p.image_path,
                   string_agg(l.tag_type || '/' || l.facet || ':' || l.tag, '|'
                              ORDER BY l.tag_type, l.facet, l.tag) AS tags
            FROM cleaned_products p JOIN product_labels l USING (product_id)
            GROUP BY ALL ORDER BY p.product_id LIMIT 80""").pl()
    path = folder / "labelled.csv"
    frame.write_csv(path)
    return path


@pytest.mark.slow
def test_suggest_english_with_image_as_json(trained_home, tmp_path, demo_image):
    shutil.copy(demo_image, tmp_path / "shirt.png")
    result = run_cli(trained_home.env, tmp_path, "suggest", "--title",
                     "Men Blue Cotton Slim Fit Shirt", "--description", "solid casual shirt",
                     "--image", "shirt.png", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["tagger"] == {"name": TAGGER, "version": champion(trained_home),
                             "reference": "champion"}
    assert out["refiner"]["reason"]
    assert out["image"] == {"path": "shirt.png", "used": True}
    check_tags(out["tags"])
    text = "men blue cotton slim fit shirt solid casual shirt"
    explained = [t["explanation"] for t in out["tags"] if t["explanation"]]
    assert explained, out["tags"]
    for explanation in explained:
        assert all(word.lower() in text for word in explanation.split(" | ")), explanation


def table_rows(text: str, header: str) -> list[dict[str, str]]:
    """The rows of the Markdown table in ``text`` whose header line is ``header``."""
    lines = text.splitlines()
    start = lines.index(header)
    names = [c.strip() for c in header.strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        # explanations are joined by " | ", escaped as "\|" in the table
        cells = [c.strip() for c in line.replace("\\|", "\x00").strip("|").split("|")]
        rows.append(dict(zip(names, (c.replace("\x00", "|") for c in cells), strict=True)))
    return rows


@pytest.mark.slow
def test_suggest_chinese_with_corrupt_image_as_text(trained_home, tmp_path):
    (tmp_path / "broken.jpg").write_bytes(NOT_AN_IMAGE)
    result = run_cli(trained_home.env, tmp_path, "suggest", "--title", "女士红色修身连衣裙",
                     "--description", "纯色 时尚 舒适", "--image", "broken.jpg",
                     "--no-refiner")
    assert result.returncode == 0, result.stderr
    assert f"image {tmp_path / 'broken.jpg'} is corrupt" in result.stderr
    assert "tagged from the text only" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f"model: {TAGGER} v{champion(trained_home)}, no refiner "
                        "(refiner turned off)")
    assert lines[1] == "image: broken.jpg (not usable; text only)"
    rows = table_rows(result.stdout, "| tag_type | facet | tag | score | source | explanation |")
    check_tags([{**row, "score": float(row["score"])} for row in rows])
    assert {row["source"] for row in rows} == {"model"}
    text = "女士红色修身连衣裙 纯色 时尚 舒适"
    for row in rows:
        for word in filter(None, row["explanation"].split(" | ")):
            assert word in text, row


def test_suggest_a_product_with_no_text_says_so_and_gives_no_tags(trained_home, tmp_path):
    # used to crash in the explanation code: "index 0 is out of bounds for axis 0"
    result = run_cli(trained_home.env, tmp_path, "suggest", "--title", "  ", "--json",
                     "--no-refiner")
    assert result.returncode == 0, result.stderr
    assert "no text" in result.stderr and "gets no tags" in result.stderr
    assert json.loads(result.stdout)["tags"] == []


def test_suggest_a_product_with_only_an_image_is_tagged_from_it(trained_home, tmp_path,
                                                                demo_image):
    shutil.copy(demo_image, tmp_path / "photo.png")
    result = run_cli(trained_home.env, tmp_path, "suggest", "--title", "", "--image",
                     "photo.png", "--json", "--no-refiner")
    assert result.returncode == 0, result.stderr
    assert "tagged from its image alone" in result.stderr
    out = json.loads(result.stdout)
    assert out["image"]["used"] and out["tags"]
    check_tags(out["tags"])
    assert {t["explanation"] for t in out["tags"]} == {None}  # no words to explain with


def test_tag_a_batch_of_products_without_text(trained_home, tmp_path):
    # a batch holding only blank products: none crashes, each is named, the others are tagged
    rows = [{"product_id": "e1", "title": "", "description": None},
            {"product_id": "e2", "title": "   ", "description": ""},
            {"product_id": "t1", "title": "Men Blue Cotton Shirt", "description": None}]
    pl.DataFrame(rows).write_csv(tmp_path / "products.csv")
    result = run_cli(trained_home.env, tmp_path, "tag", "products.csv", "tags.csv",
                     "--batch-size", "2", "--no-refiner")
    assert result.returncode == 0, result.stderr
    tags = pl.read_csv(tmp_path / "tags.csv", infer_schema=False)
    assert set(tags["product_id"]) == {"t1"}
    source = tmp_path / "products.csv"
    assert f"{source} line 2 (product e1): no text and no image; no tags" in result.stderr
    assert f"{source} line 3 (product e2): no text and no image; no tags" in result.stderr
    assert "2 product(s) had neither text nor an image and got no tags" in result.stdout


def test_tag_names_each_bad_line_and_tags_every_good_one(trained_home, tmp_path):
    # invalid UTF-8, a bad quote, an empty and a repeated id, Windows and Unix line breaks
    # mixed: each bad line is named with its reason, listed in --rejects, and the rest tagged
    lines = [b"product_id,title,description",
             b"g1,Men Blue Cotton Shirt,slim fit",
             b"b1,Caf\xe9 \xff shirt,bad bytes",
             b'"b2","Unclosed quote shirt,"x"',
             b"g2,Women Red Dress,",
             b",No id shirt,",
             b"g1,Repeated id shirt,",
             b"g3,Kids Yellow Sneakers,casual"]
    ends = [b"\r\n", b"\n", b"\r\n", b"\n", b"\r\n", b"\n", b"\r\n", b"\n"]
    source = tmp_path / "products.csv"
    source.write_bytes(b"".join(line + end for line, end in zip(lines, ends, strict=True)))
    result = run_cli(trained_home.env, tmp_path, "tag", "products.csv", "tags.csv",
                     "--no-refiner", "--no-explain", "--rejects", "rejects.csv")
    assert result.returncode == 0, result.stderr
    assert set(pl.read_csv(tmp_path / "tags.csv", infer_schema=False)["product_id"]) == {
        "g1", "g2", "g3"}
    for line, reason in ((3, "invalid_encoding"), (4, "malformed_line"), (6, "missing_id"),
                         (7, "duplicate_id")):
        assert f"{source} line {line}: {reason} (" in result.stderr, result.stderr
    assert "product_id g1 is already on line 2" in result.stderr
    assert (f"4 line(s) of products.csv could not be used and were not tagged; listed in "
            f"{tmp_path / 'rejects.csv'}") in result.stdout
    rejects = pl.read_csv(tmp_path / "rejects.csv", infer_schema=False)
    assert rejects["line"].to_list() == ["3", "4", "6", "7"]
    assert "price" in result.stderr  # the demo model's catalog feature, absent from the file


@pytest.mark.slow
@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=csv_body("product_id,title,description"))
def test_tag_on_random_csv_shapes_tags_or_reports_every_line(trained_home, tmp_path, body):
    # hypothesis: random CSV shapes (bad bytes, wrong field counts, empty ids and lines, line
    # breaks mixed) through the real command: it never crashes, and each non-empty line is
    # either a tagged product or a reported bad line
    (tmp_path / "products.csv").write_bytes(body)
    result = run_cli(trained_home.env, tmp_path, "tag", "products.csv", "tags.csv",
                     "--no-refiner", "--no-explain", "--rejects", "rejects.csv")
    assert result.returncode == 0, result.stderr
    rejects = pl.read_csv(tmp_path / "rejects.csv", infer_schema=False)
    with ProductFile(tmp_path / "products.csv") as products:
        ids = {line: pid for batch in products.batches(100)
               for line, pid in zip(batch["_line"], batch["product_id"], strict=True)}
    assert set(ids) | {int(v) for v in rejects["line"]} == data_lines(body, 2)
    tags = pl.read_csv(tmp_path / "tags.csv", infer_schema=False)
    assert set(tags["product_id"]) <= set(ids.values())


def test_tag_reads_the_models_feature_columns(trained_home, tmp_path):
    # the demo model reads the price (profile `features:`): the same title at two prices
    # scores differently, and the column is read from the product file by its name
    rows = [{"product_id": "cheap", "title": "Women Red Dress", "price": "19"},
            {"product_id": "dear", "title": "Women Red Dress", "price": "99999"}]
    pl.DataFrame(rows).write_csv(tmp_path / "products.csv")
    result = run_cli(trained_home.env, tmp_path, "tag", "products.csv", "tags.csv",
                     "--no-refiner", "--no-explain")
    assert result.returncode == 0, result.stderr
    assert "price" not in result.stderr
    tags = pl.read_csv(tmp_path / "tags.csv", infer_schema=False)
    scores = {p: dict(zip(g["tag"], g["score"], strict=True))
              for (p,), g in tags.group_by("product_id")}
    shared = set(scores["cheap"]) & set(scores["dear"])
    assert scores["cheap"] != scores["dear"], (shared, scores)


def test_tag_never_opens_an_image_outside_the_product_files_folder(trained_home, tmp_path,
                                                                   demo_image):
    # a real image beside, not under, the product file's folder: refused by the one
    # image-path rule, named in a warning, and the product is tagged from its text
    shutil.copy(demo_image, tmp_path / "outside.png")
    (tmp_path / "data").mkdir()
    rows = [{"product_id": "o1", "title": "Men Blue Cotton Shirt", "image_path": "../outside.png"},
            {"product_id": "o2", "title": "Men Blue Cotton Shirt", "image_path": None}]
    pl.DataFrame(rows).write_csv(tmp_path / "data" / "products.csv")
    result = run_cli(trained_home.env, tmp_path, "tag", "data/products.csv", "tags.csv",
                     "--no-refiner", "--no-explain")
    assert result.returncode == 0, result.stderr
    assert "line 2 (product o1): image" in result.stderr
    assert "is outside the image root (not opened)" in result.stderr
    tags = pl.read_csv(tmp_path / "tags.csv", infer_schema=False)
    one, two = (tags.filter(pl.col("product_id") == p).drop("product_id") for p in ("o1", "o2"))
    assert one.drop("score").rows() == two.drop("score").rows()
    # --image-root widens the rule to a folder the user names
    result = run_cli(trained_home.env, tmp_path, "tag", "data/products.csv", "tags.csv",
                     "--no-refiner", "--no-explain", "--image-root", str(tmp_path))
    assert result.returncode == 0 and "outside the image root" not in result.stderr


def write_products(folder: Path, image: Path) -> list[dict]:
    """Four products: a real image (relative path), a corrupt image, a missing image and a
    Chinese product without one."""
    (folder / "img").mkdir()
    shutil.copy(image, folder / "img" / "real.png")
    (folder / "img" / "bad.jpg").write_bytes(NOT_AN_IMAGE)
    return [
        {"product_id": "p1", "title": "Men Blue Cotton Shirt", "description": "slim fit",
         "image_path": "img/real.png"},
        {"product_id": "p2", "title": "Women Black Leather Watch", "description": None,
         "image_path": "img/bad.jpg"},
        {"product_id": "p3", "title": "Kids Yellow Sneakers", "description": "casual",
         "image_path": "img/gone.jpg"},
        {"product_id": "p4", "title": "男士纯色休闲T恤", "description": "舒适 夏季",
         "image_path": None},
    ]


def check_tag_file(tags: pl.DataFrame, result: subprocess.CompletedProcess, source: Path,
                   out: Path, version: str) -> None:
    assert result.returncode == 0, result.stderr
    assert set(tags["product_id"]) == {"p1", "p2", "p3", "p4"}  # bad images: text only
    check_tags(tags.to_dicts())
    assert set(tags["tagger_version"]) == {version}
    assert set(tags["source"]) <= {"model", "refiner"}
    # the lines of p2 and p3: after the header in CSV, from line 1 in JSON Lines
    first = 2 if source.suffix == ".csv" else 1
    assert f"{source} line {first + 1} (product p2): image {source.parent / 'img' / 'bad.jpg'} " \
           "is corrupt" in result.stderr
    assert f"{source} line {first + 2} (product p3): image {source.parent / 'img' / 'gone.jpg'} " \
           "is missing" in result.stderr
    assert "real.png" not in result.stderr
    assert "2 product(s) had an unusable image" in result.stdout
    assert not list(out.parent.glob(".*.tmp"))  # the temporary file was renamed


@pytest.mark.slow
def test_tag_csv_to_csv(trained_home, tmp_path, demo_image):
    data = tmp_path / "data"
    data.mkdir()
    pl.DataFrame(write_products(data, demo_image)).write_csv(data / "products.csv")
    out = tmp_path / "tags.csv"
    out.write_text("old content\n", encoding="utf-8")
    # run from another folder: image paths start at the product file's folder
    result = run_cli(trained_home.env, tmp_path, "tag", "data/products.csv", "tags.csv",
                     "--batch-size", "3")
    check_tag_file(pl.read_csv(out, infer_schema=False).with_columns(pl.col("score").cast(
        pl.Float64)), result, data / "products.csv", out, champion(trained_home))
    assert f"wrote {pl.read_csv(out).height} tags of 4 products to {out}" in result.stdout


@pytest.mark.slow
def test_tag_jsonl_to_parquet(trained_home, tmp_path, demo_image):
    rows = write_products(tmp_path, demo_image)
    source = tmp_path / "products.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                      encoding="utf-8")
    result = run_cli(trained_home.env, tmp_path, "tag", str(source), "tags.parquet")
    tags = pl.read_parquet(tmp_path / "tags.parquet")
    check_tag_file(tags, result, source, tmp_path / "tags.parquet", champion(trained_home))
    assert tags.schema["score"] == pl.Float64


@pytest.mark.slow
def test_eval_on_warehouse_labels_prints_a_table_per_tag_type(trained_home, tmp_path,
                                                              catalog_sample):
    result = run_cli(trained_home.env, tmp_path, "eval", "--model", "champion",
                     str(catalog_sample))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{TAGGER} v{champion(trained_home)} (champion) on "
                               f"{catalog_sample}: 80 products, ")
    header = next(line for line in lines if line.startswith("| scope |"))
    assert header.startswith("| scope | micro_precision | micro_recall | micro_f1 | macro_f1 |")
    rows = table_rows(result.stdout, header)
    scopes = [row["scope"] for row in rows]
    assert scopes[-1] == "all" and "category" in scopes
    assert set(scopes) - {"all"} <= set(TAG_TYPES)
    for row in rows:
        assert row["n_samples"].isdigit() and int(row["n_samples"]) <= 80
        for name in ("micro_precision", "micro_recall", "micro_f1", "macro_f1", "samples_f1",
                     "p_at_1", "p_at_3", "p_at_5", "ndcg_at_5"):
            assert row[name] == "n/a" or 0.0 <= float(row[name]) <= 1.0, row
        p, r = float(row["micro_precision"]), float(row["micro_recall"])
        assert float(row["micro_f1"]) == pytest.approx(2 * p * r / (p + r) if p + r else 0.0,
                                                       abs=2e-4)
    assert rows[-1]["n_samples"] == "80"


@pytest.mark.slow
@pytest.mark.parametrize("refiner", [False, True], ids=["tagger_alone", "as_served"])
def test_eval_of_the_models_own_tags_is_perfect(trained_home, tmp_path, catalog_sample, refiner):
    """Labels equal to the model's own tags (``tag``) give precision, recall and F1 of exactly
    1 in ``eval``: the tagger alone with --no-refiner, else the tagger with the refiner that
    ``tag`` applies (eval measures the model as it serves)."""
    off = () if refiner else ("--no-refiner",)
    tagged = run_cli(trained_home.env, tmp_path, "tag", str(catalog_sample), "own.parquet",
                     "--no-explain", *off)
    assert tagged.returncode == 0, tagged.stderr
    tags = pl.read_parquet(tmp_path / "own.parquet")
    assert tags["explanation"].null_count() == tags.height
    if not refiner:
        assert set(tags["source"]) == {"model"}
    labels = tags.group_by("product_id").agg(
        pl.format("{}/{}:{}", "tag_type", "facet", "tag").str.join("|").alias("tags"))
    products = pl.read_csv(catalog_sample, infer_schema=False).drop("tags")
    products.join(labels, on="product_id", how="left").write_csv(tmp_path / "own.csv")
    result = run_cli(trained_home.env, tmp_path, "eval", "own.csv", "--json", *off)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["version"] == champion(trained_home) and out["products"] == 80
    assert out["refiner_version"] == tags["refiner_version"].unique().to_list()[0]
    if refiner:  # the trained home's refiner passed its gate: eval applied it
        assert out["refiner_version"] is not None, out["refiner_reason"]
    assert out["unknown_labels"] == 0 and out["labels"] == tags.height
    assert set(out["metrics"]) - {"all"} <= set(TAG_TYPES) and "category" in out["metrics"]
    overall = out["metrics"]["all"]
    assert overall["micro_precision"] == overall["micro_recall"] == overall["micro_f1"] == 1.0
    assert overall["macro_f1"] == 1.0


@pytest.fixture
def registry_copy(trained_home, tmp_path) -> dict[str, str]:
    """An environment whose MLflow store is a copy of the trained home's, with a second
    version of the tagger registered from the champion's source."""
    home = tmp_path / "home"
    (home / "mlflow").mkdir(parents=True)
    shutil.copy(trained_home.home / "mlflow" / "mlflow.db", home / "mlflow" / "mlflow.db")
    uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    current = client.get_model_version_by_alias(TAGGER, "champion")
    # the registry looks a models:/m-... source up through the global tracking URI
    saved = tracking_utils._tracking_uri
    tracking_utils._tracking_uri = uri
    try:
        client.create_model_version(TAGGER, current.source, run_id=current.run_id)
    finally:
        tracking_utils._tracking_uri = saved
    return {**trained_home.env, **home_env(home)}


@pytest.mark.slow
def test_promote_and_rollback_move_champion_and_record_why(registry_copy, tmp_path):
    uri = f"sqlite:///{tmp_path / 'home' / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    old = str(client.get_model_version_by_alias(TAGGER, "champion").version)
    new = str(max(int(v.version) for v in client.search_model_versions(f"name = '{TAGGER}'")))

    result = run_cli(registry_copy, tmp_path, "promote", new, "--reason", "better on shoes",
                     "--actor", "alice")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{TAGGER} champion: v{old} -> v{new}"
    version = client.get_model_version_by_alias(TAGGER, "champion")
    assert str(version.version) == new
    assert version.tags["champion.set_by"] == "alice"
    assert version.tags["champion.reason"] == "better on shoes"

    result = run_cli(registry_copy, tmp_path, "rollback", "--reason", "shoes got worse",
                     "--actor", "bob")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{TAGGER} champion: v{new} -> v{old}"
    version = client.get_model_version_by_alias(TAGGER, "champion")
    assert str(version.version) == old
    assert version.tags["champion.set_by"] == "bob"
    assert version.tags["champion.reason"] == f"rollback from v{new}: shoes got worse"


@pytest.mark.slow
def test_promote_unknown_alias_or_version_lists_what_exists(registry_copy, tmp_path):
    result = run_cli(registry_copy, tmp_path, "promote", "foo", "--reason", "x")
    assert result.returncode == 1
    assert last_error(result).startswith(f"error: model {TAGGER} has no alias 'foo' "
                                         "(aliases: ")
    assert "champion" in last_error(result)
    result = run_cli(registry_copy, tmp_path, "promote", "999", "--reason", "x")
    assert result.returncode == 1
    assert last_error(result).startswith(f"error: model {TAGGER} has no version '999' "
                                         "(versions: 1, ")


@pytest.mark.slow
def test_doctor_passes_on_the_trained_home(trained_home, tmp_path):
    result = run_cli(trained_home.env, tmp_path, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    checks = {line[6:].split(":")[0]: line[:4].strip() for line in lines[:-1]}
    assert checks == {"project home": "OK", "warehouse": "OK", "MLflow tracking": "OK",
                      "tagger model": "OK", "refiner model": checks["refiner model"],
                      "Dagster instance": "OK", "Dagster runs": "OK", "pseudonym key": "OK",
                      "landing folders": "OK", "catalog profile": "OK"}
    assert checks["refiner model"] in {"OK", "WARN"}
    assert "OK    catalog profile: demo: " in result.stdout
    assert f"{TAGGER} champion is v{champion(trained_home)}; it loads" in result.stdout
    assert "a dead run is marked failed within 15 s" in result.stdout
    assert lines[-1].startswith("10 checks: 0 failed")


@pytest.mark.slow
def test_doctor_fails_on_an_empty_home_and_creates_nothing(trained_home, tmp_path):
    home = tmp_path / "nothing"
    env = {**trained_home.env, **home_env(home)}
    env.pop("TAG_PIPELINE_PSEUDONYM_KEY")
    result = run_cli(env, tmp_path, "doctor")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"FAIL  project home: {home} does not exist -> run `tag-pipeline init`" \
           " (or set TAG_PIPELINE_HOME)" in lines
    assert f"FAIL  warehouse: no DuckDB file at {home / 'warehouse.duckdb'}" in result.stdout
    assert f"FAIL  MLflow tracking: no sqlite store at {home / 'mlflow' / 'mlflow.db'}" \
        in result.stdout
    assert f"FAIL  Dagster instance: {home / 'dagster' / 'dagster.yaml'} does not exist" \
        in result.stdout
    assert "FAIL  pseudonym key:" in result.stdout
    assert not home.exists()

    assert run_cli(env, tmp_path, "init").returncode == 0
    key = home / "secrets" / "pseudonym.key"
    key.chmod(0o644)
    result = run_cli(env, tmp_path, "doctor")
    assert result.returncode == 1
    assert f"FAIL  pseudonym key: key file {key} has mode 644; others can read it -> " \
           f"chmod 600 {key}" in result.stdout.splitlines()
    assert "OK    Dagster instance:" in result.stdout
    assert "OK    landing folders:" in result.stdout
    assert "WARN  catalog profile: demo: no files under " in result.stdout


@pytest.mark.slow
def test_bad_input_fails_with_one_line_naming_it(trained_home, tmp_path):
    env = trained_home.env
    result = run_cli(env, tmp_path, "tag", "missing.csv", "out.csv")
    assert result.returncode == 1
    assert last_error(result) == f"error: input file {tmp_path / 'missing.csv'} does not exist"

    (tmp_path / "products.csv").write_text("product_id,name\np1,Red Shirt\n",
                                           encoding="utf-8")
    (tmp_path / "out.csv").write_text("old\n", encoding="utf-8")
    result = run_cli(env, tmp_path, "tag", "products.csv", "out.csv")
    assert result.returncode == 1
    assert last_error(result) == (f"error: input file {tmp_path / 'products.csv'} lacks "
                                  "column(s) ['title']; has ['product_id', 'name']")
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == "old\n"

    (tmp_path / "noheader.csv").write_bytes(b"\n")
    result = run_cli(env, tmp_path, "tag", "noheader.csv", "out.csv")
    assert result.returncode == 1
    assert "line 1 is empty; a CSV file needs a header line" in last_error(result)

    result = run_cli(env, tmp_path, "tag", "products.csv", "out.xlsx")
    assert last_error(result) == (f"error: {tmp_path / 'out.xlsx'}: unknown file type "
                                  "'.xlsx'; use one of .csv, .jsonl, .ndjson, .parquet")

    (tmp_path / "notitle.jsonl").write_text('{"product_id": "p1"}\n', encoding="utf-8")
    result = run_cli(env, tmp_path, "eval", "notitle.jsonl")
    assert result.returncode == 1
    assert last_error(result).startswith(f"error: input file {tmp_path / 'notitle.jsonl'} "
                                         "lacks column(s) ['title', 'tags']")

    result = run_cli(env, tmp_path, "suggest", "--title", "Red Shirt", "--model", "foo")
    assert result.returncode == 1
    assert last_error(result).startswith(f"error: model {TAGGER} has no alias 'foo' "
                                         "(aliases: ")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_a_killed_tag_leaves_no_file_behind(trained_home, tmp_path):
    # SIGKILL while the tag file is being written: the old file stays as it was and no
    # temporary file is left (it has no name until the command finishes)
    out = tmp_path / "out"
    out.mkdir()
    (out / "tags.csv").write_text("old\n", encoding="utf-8")
    rows = [{"product_id": f"p{i}", "title": f"Men Blue Cotton Shirt {i}"} for i in range(20_000)]
    pl.DataFrame(rows).write_csv(tmp_path / "products.csv")
    env = {k: v for k, v in trained_home.env.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    script = Path(sys.executable).parent / "tag-pipeline"
    worker = subprocess.Popen([str(script), "tag", "products.csv", "out/tags.csv", "--no-refiner",
                               "--no-explain", "--batch-size", "64"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def writing() -> bool:  # an open file in out/ that has no name: the tag file being written
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{worker.pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith(str(out)) and target.endswith("(deleted)"):
                    return True
        return False

    try:
        deadline = time.monotonic() + 300
        while not writing():
            assert worker.poll() is None, "tag ended before it was killed"
            assert time.monotonic() < deadline, "tag never started writing"
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        worker.kill()
        worker.wait()
    assert sorted(p.name for p in out.iterdir()) == ["tags.csv"]
    assert (out / "tags.csv").read_text(encoding="utf-8") == "old\n"


@pytest.mark.slow
def test_console_script_errors_are_one_line_and_an_exit_code(trained_home, tmp_path):
    result = run_script(trained_home.env, tmp_path, "tag", "missing.csv", "out.csv")
    assert result.returncode == 1
    assert last_error(result) == f"error: input file {tmp_path / 'missing.csv'} does not exist"
    result = run_script(trained_home.env, tmp_path, "promote")
    assert result.returncode == 2  # argparse: a usage error
    assert "the following arguments are required: version, --reason" in result.stderr


def tiny_space() -> LabelSpace:
    return LabelSpace(heads=(
        Head("category_l1", "softmax", "category", ("category_l1",),
             (TagClass("category_l1", "Apparel", 5), TagClass("category_l1", "Shoes", 5)), 10),
        Head("attribute", "sigmoid", "attribute", ("color", "material"),
             (TagClass("color", "Blue", 3), TagClass("material", "Blue", 3),
              TagClass("color", "Red", 3)), 10),
    ), rare_tags=(), min_support=3, n_train=10)


def test_labels_parse_with_and_without_facets_and_count_unknown_tags():
    batch = pl.DataFrame({"product_id": ["a", "b", "c"],
                          "tags": ["category:Apparel|attribute/color:Blue| attribute:Red ",
                                   "category:Hats|style:Solid", None]})
    known, unknown = parse_labels(batch, tiny_space(), "f.csv")
    assert sorted(known.rows()) == [("a", "attribute", "color", "Blue"),
                                    ("a", "attribute", "color", "Red"),
                                    ("a", "category", "category_l1", "Apparel")]
    assert unknown == 2


@pytest.mark.parametrize(("tags", "message"), [
    ("Apparel", "f.csv row 7 (product a): tag entry 'Apparel' is not 'tag_type:tag'"),
    ("colour:Blue", "f.csv row 7 (product a): unknown tag type 'colour' (tag types: "),
    ("attribute:Blue", "f.csv row 7 (product a): tag attribute:Blue is in facets "
                       "['color', 'material']; write it as attribute/<facet>:Blue"),
])
def test_bad_label_entries_name_the_row(tags, message):
    batch = pl.DataFrame({"product_id": ["a"], "tags": [tags]})
    with pytest.raises(InputFileError) as error:
        parse_labels(batch, tiny_space(), "f.csv", first_row=7)
    assert message in str(error.value)


def test_summary_shows_the_gates_decision_per_model_version(trained_home, tmp_path):
    result = run_cli(trained_home.env, tmp_path, "summary")
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines()
                  if line.startswith("| version | aliases |"))
    rows = table_rows(result.stdout, header)
    version = str(champion(trained_home))
    row = next(r for r in rows if r["version"] == version)
    assert "champion" in row["aliases"]
    assert row["metric"] == "micro_f1" and 0.0 <= float(row["baseline"]) <= 1.0
    tagger, baseline = float(row["tagger"]), float(row["baseline"])
    # the gate's words agree with its figures (a tiny model that tied the baseline was
    # promoted by hand: the gate still says it did not beat it)
    assert row["promoted"] == ("true" if tagger > baseline else "false")
    assert ("beats the baseline" if tagger > baseline else "does not beat the baseline") \
        in row["gate's reason"]
    # the margin over the baseline and its paired bootstrap interval
    margin = re.fullmatch(r"([+-]\d\.\d{4}) \(([+-]\d\.\d{4}) to ([+-]\d\.\d{4})\)",
                          row["vs baseline (95% interval)"])
    assert margin, row["vs baseline (95% interval)"]
    difference, low, high = map(float, margin.groups())
    assert difference == pytest.approx(tagger - baseline, abs=1e-4)
    assert low <= difference <= high
    # the latest evaluated version's test table: tagger vs baseline per tag type and facet
    assert "Test split of v" in result.stdout
    header = next(line for line in result.stdout.splitlines()
                  if line.startswith("| scope | acc tagger |"))
    assert "| micro tagger |" in header and "| micro baseline |" in header
    scopes = {r["scope"] for r in table_rows(result.stdout, header)}
    assert {"all", "type:category", "type:attribute"} <= scopes, scopes
    # the review queue of suspected catalog errors, counted by facet as the table holds it
    with duckdb.connect(str(trained_home.home / "warehouse.duckdb"), read_only=True) as con:
        queued = dict(con.execute("SELECT facet, count(*) FROM catalog_tag_disagreements "
                                  "GROUP BY facet").fetchall())
    line = next(line for line in result.stdout.splitlines()
                if line.startswith("Suspected catalog errors"))
    assert ast.literal_eval(line.split("by facet:", 1)[1].strip()) == queued


@pytest.mark.slow
def test_tag_and_eval_read_a_raw_export_through_its_profile(trained_home, tmp_path):
    """A raw export of the demo catalog (its own column names, ¥ prices, bad rows) is tagged
    and scored through the demo profile with no renaming; the truth is its own tag columns."""
    export = sorted((trained_home.home / "landing" / "demo").glob("products_*.csv"))[0]
    rows = sum(1 for _ in export.open(encoding="utf-8")) - 1
    out = tmp_path / "tags.csv"
    result = run_cli(trained_home.env, tmp_path, "tag", str(export), str(out), "--profile",
                     "demo", "--no-explain", "--no-refiner")
    assert result.returncode == 0, result.stdout + result.stderr
    tags = pl.read_csv(out)
    tagged = tags["product_id"].n_unique()
    assert tags["product_id"].str.starts_with("SKU-").all()  # the profile's id column, sku
    # every line is tagged or named with its reason (the demo export has rejected rows)
    bad = [line for line in result.stderr.splitlines() if "not tagged" in line]
    assert bad and all(" line " in line for line in bad)
    assert "empty_title" in result.stderr
    assert tagged + len(bad) >= rows - 5  # products with no tag above threshold may be absent
    assert "could not be used and were not tagged" in result.stdout

    result = run_cli(trained_home.env, tmp_path, "eval", str(export), "--profile", "demo",
                     "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["products"] > 0.9 * rows and report["labels"] > report["products"]
    assert report["metrics"]["all"]["micro_f1"] > 0.5  # the demo model on its own catalog

    # the plain command on the same raw file: it has no product_id column
    result = run_cli(trained_home.env, tmp_path, "tag", str(export), str(out))
    assert result.returncode == 1 and "lacks column(s) ['product_id']" in last_error(result)
