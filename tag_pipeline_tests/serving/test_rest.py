"""The registered champion served over REST by MLflow's own scoring server (``make serve``).

One ``mlflow models serve`` process for the module, started on the session's trained project
home, answers real demo-catalog rows; its answers must equal the same model loaded in process.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest
from PIL import Image

from tag_pipeline.lib.models.labels import TAG_TYPES
from tag_pipeline_tests.support import ProjectHome

pytestmark = pytest.mark.slow

# The response contract: one record per (product, tag); the refiner's model says which model
# gives each tag (source: model or refiner).
OUTPUT_COLUMNS = ["product_id", "tag", "tag_type", "facet", "score", "warning"]
REFINED_COLUMNS = ["product_id", "tag", "tag_type", "facet", "score", "source", "warning"]


def output_columns(model_uri: str) -> list[str]:
    return REFINED_COLUMNS if "/tag_pipeline_refiner/" in model_uri else OUTPUT_COLUMNS
INPUT_COLUMNS = ["product_id", "title", "description", "image_path", "image_bytes"]
# Loading TensorFlow and the model on a busy 2-core CI machine; normally about 15 s.
START_TIMEOUT_S = 240
REQUEST_TIMEOUT_S = 120
CJK = r"[\u4e00-\u9fff]"


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    model_uri: str

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(server: Server, timeout_s: float) -> None:
    """Poll GET /ping until it answers 200; fail naming the URL, or the exit and stderr tail."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"`mlflow models serve -m {server.model_uri}` exited with code "
                        f"{server.process.returncode} before {server.url}/ping answered; "
                        f"its output ends with:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/ping", timeout=5) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = repr(exc)
        time.sleep(1)
    pytest.fail(f"GET {server.url}/ping did not answer 200 within {timeout_s:.0f} s (last: "
                f"{last}); the server's output ends with:\n{server.log_tail()}")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (the CLI and its uvicorn child), then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def model_uri(trained_home: ProjectHome) -> str:
    """The model ``make serve`` serves: ``tag-pipeline serving-model``, as a subprocess."""
    env = {k: v for k, v in trained_home.env.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    done = subprocess.run([str(Path(sys.executable).parent / "tag-pipeline"), "serving-model"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    uri = done.stdout.strip()
    assert uri.startswith(("models:/tag_pipeline_tagger/", "models:/tag_pipeline_refiner/")), uri
    return uri


@pytest.fixture(scope="module")
def server(trained_home: ProjectHome, model_uri: str, tmp_path_factory) -> Iterator[Server]:
    """``mlflow models serve`` of the model ``make serve`` serves, from the home's sqlite
    registry (venv's env)."""
    workdir = tmp_path_factory.mktemp("serve")
    bin_dir = Path(sys.executable).parent
    # env-manager local execs `uvicorn` by name (as `make serve` does, the venv's bin first)
    env = {**trained_home.env, "MLFLOW_TRACKING_URI": trained_home.tracking_uri,
           "PATH": os.pathsep.join([str(bin_dir), trained_home.env.get("PATH", os.defpath)]),
           # the served model opens image paths inside this folder only
           "TAG_PIPELINE_IMAGE_ROOT": str(image_root(trained_home.home))}
    env.pop("MLFLOW_REGISTRY_URI", None)
    port = free_port()
    command = [str(bin_dir / "mlflow"), "models", "serve", "-m", model_uri,
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=workdir, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    running = Server(url=f"http://127.0.0.1:{port}", process=process, log=log,
                     model_uri=model_uri)
    try:
        wait_until_up(running, START_TIMEOUT_S)
        yield running
    finally:
        stop(process)


def post(server: Server, body: dict) -> tuple[int, dict]:
    """POST a JSON body to /invocations; the status and the decoded JSON answer."""
    request = urllib.request.Request(
        f"{server.url}/invocations", data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            status, text = response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode("utf-8")
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        pytest.fail(f"POST /invocations answered HTTP {status} with non-JSON {text[:500]!r}; "
                    f"server output:\n{server.log_tail()}")


def decodable_image(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            img.load()
            return min(img.size) >= 16  # the demo also writes 8x8 "too small" images
    except (OSError, ValueError):
        return False


def image_root(home: Path) -> Path:
    """The folder of the demo catalog's images: the served model's image root."""
    return home / "landing" / "demo"


def demo_rows(home: Path) -> pd.DataFrame:
    """Real rows of the home's demo catalog: an English and a Chinese title without image,
    and one product with a real image three times: by path, as bytes and without it."""
    root = home / "landing" / "demo"
    csv = sorted(root.glob("products_*.csv"))
    assert csv, f"no demo catalog export products_*.csv in {root}"
    products = pl.read_csv(csv[0], infer_schema=False).with_columns(
        pl.col("description", "image").fill_null(""))
    english = products.filter(~pl.col("title").str.contains(CJK), pl.col("image") == "").row(
        0, named=True)
    chinese = products.filter(~pl.col("title").str.contains("[A-Za-z]"),
                              pl.col("image") == "").row(0, named=True)
    pictured = next((row for row in products.filter(pl.col("image") != "").iter_rows(named=True)
                     if decodable_image(root / row["image"])), None)
    assert pictured is not None, f"no decodable image among the rows of {csv[0]}"
    image = (root / pictured["image"]).resolve()
    sku = pictured["sku"]
    rows = [
        (english["sku"], english["title"], english["description"], None, b""),
        (chinese["sku"], chinese["title"], chinese["description"], None, b""),
        (f"{sku}/path", pictured["title"], pictured["description"], str(image), b""),
        (f"{sku}/bytes", pictured["title"], pictured["description"], None, image.read_bytes()),
        (f"{sku}/none", pictured["title"], pictured["description"], None, b""),
    ]
    return pd.DataFrame(rows, columns=INPUT_COLUMNS)


def split_body(rows: pd.DataFrame) -> dict:
    """The ``dataframe_split`` JSON body; binary columns travel base64-encoded, and a row
    without bytes sends "" (MLflow base64-decodes every value, null included)."""
    data = [[base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v for v in row]
            for row in rows.itertuples(index=False)]
    return {"dataframe_split": {"columns": list(rows.columns), "data": data}}


@pytest.fixture(scope="module")
def rows(trained_home: ProjectHome) -> pd.DataFrame:
    return demo_rows(trained_home.home)


@pytest.fixture(scope="module")
def served(server: Server, rows: pd.DataFrame) -> pd.DataFrame:
    status, answer = post(server, split_body(rows))
    assert status == 200, f"POST /invocations answered HTTP {status}: {answer}"
    assert list(answer) == ["predictions"], answer
    return pd.DataFrame.from_records(answer["predictions"])


def tags_of(tags: pd.DataFrame, product_id: str) -> pd.DataFrame:
    return tags[tags["product_id"] == product_id].drop(columns="product_id").reset_index(
        drop=True)


@pytest.fixture(scope="module")
def local_champion(trained_home: ProjectHome, model_uri: str):
    """The served model loaded in this process, as the server loads it (same image root)."""
    saved = os.environ.get("TAG_PIPELINE_IMAGE_ROOT")
    os.environ["TAG_PIPELINE_IMAGE_ROOT"] = str(image_root(trained_home.home))
    # Earlier tests in the session may have pointed the mlflow module's registry elsewhere.
    mlflow.set_tracking_uri(trained_home.tracking_uri)
    mlflow.set_registry_uri(trained_home.tracking_uri)
    try:
        yield mlflow.pyfunc.load_model(model_uri)
    finally:
        mlflow.set_tracking_uri(None)  # unset again; the restored environment decides
        mlflow.set_registry_uri(None)
        if saved is None:
            os.environ.pop("TAG_PIPELINE_IMAGE_ROOT", None)
        else:
            os.environ["TAG_PIPELINE_IMAGE_ROOT"] = saved


def test_served_champion_tags_real_rows(served: pd.DataFrame, rows: pd.DataFrame,
                                        local_champion, model_uri: str):
    assert list(served.columns) == output_columns(model_uri)
    assert served["score"].between(0, 1).all(), served["score"].describe()
    assert set(served["tag_type"]) <= set(TAG_TYPES)
    # every product is answered (its category head has no threshold)
    assert sorted(served["product_id"].unique()) == sorted(rows["product_id"])
    assert sorted(served.loc[served["tag_type"] == "category", "product_id"].unique()) == sorted(
        rows["product_id"])
    sku = rows["product_id"].iloc[2].removesuffix("/path")
    by_path, by_bytes = tags_of(served, f"{sku}/path"), tags_of(served, f"{sku}/bytes")
    # the image reached the model both ways: equal answers, unlike the same row without it
    pd.testing.assert_frame_equal(by_path, by_bytes, check_exact=False, rtol=0, atol=1e-6)
    assert by_path["warning"].isna().all()  # the path lies in the image root: opened
    fusion = local_champion.unwrap_python_model().bundle.fusion
    if fusion is None or any(h.weight > 0 for h in fusion.heads.values()):
        # the image reaches a model whose scores read it: unlike the same row without it
        without = tags_of(served, f"{sku}/none")
        assert not (len(without) == len(by_path)
                    and np.allclose(without["score"], by_path["score"], rtol=0, atol=1e-6)), \
            "the served model gave the same scores with and without the image"


def test_served_equals_in_process_champion(served: pd.DataFrame, rows: pd.DataFrame,
                                           local_champion, model_uri: str):
    local = local_champion.predict(rows)
    assert len(local) > 0
    pd.testing.assert_frame_equal(served.drop(columns="score"),
                                  local[output_columns(model_uri)].drop(columns="score"))
    np.testing.assert_allclose(served["score"].to_numpy(), local["score"].to_numpy(),
                               rtol=0, atol=1e-6)


def test_an_image_path_outside_the_root_is_not_opened(server: Server, rows: pd.DataFrame,
                                                      served: pd.DataFrame, tmp_path):
    # a real image, placed outside the served model's image root: by absolute path and by a
    # relative path that climbs out; each row gets a warning and the tags of no image
    pictured = rows.iloc[2]
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(Path(pictured["image_path"]).read_bytes())
    sku = pictured["product_id"].removesuffix("/path")
    probe = pd.DataFrame([
        (f"{sku}/abs", pictured["title"], pictured["description"], str(outside), b""),
        (f"{sku}/up", pictured["title"], pictured["description"],
         "../" * 12 + str(outside).lstrip("/"), b""),
    ], columns=INPUT_COLUMNS)
    status, answer = post(server, split_body(probe))
    assert status == 200, answer
    tags = pd.DataFrame.from_records(answer["predictions"])
    without = tags_of(served, f"{sku}/none")
    for product in (f"{sku}/abs", f"{sku}/up"):
        got = tags_of(tags, product)
        assert got["warning"].str.contains("resolves outside the image folder").all(), got
        pd.testing.assert_frame_equal(got.drop(columns="warning"),
                                      without.drop(columns="warning"),
                                      check_exact=False, rtol=0, atol=1e-6)
    assert tags_of(served, f"{sku}/path")["warning"].isna().all()


def test_request_without_title_is_refused_naming_the_column(server: Server, rows: pd.DataFrame):
    status, answer = post(server, split_body(rows.drop(columns="title")))
    assert 400 <= status < 500, f"HTTP {status}: {answer}"
    # MLflow's schema check, from the signature's required column
    assert "missing inputs ['title']" in answer.get("message", ""), answer


def test_served_equals_the_tag_command(served: pd.DataFrame, rows: pd.DataFrame,
                                       trained_home: ProjectHome, tmp_path):
    # REST answers as `tag-pipeline tag` does (which tags as product_tags does): same model,
    # same refiner, same tags and scores, for the rows a product file can carry (no bytes)
    text_rows = rows[rows["image_bytes"].map(len) == 0].drop(columns="image_bytes")
    pl.from_pandas(text_rows).write_csv(tmp_path / "products.csv")
    env = {k: v for k, v in trained_home.env.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "tag-pipeline"), "tag", "products.csv", "tags.csv",
         "--no-explain", "--image-root", str(image_root(trained_home.home))],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    # the refiner's model also says which model gives each tag, as the tag file does
    keys = ["product_id", "tag_type", "facet", "tag", *(["source"] if "source" in served else [])]
    tagged = (pl.read_csv(tmp_path / "tags.csv", infer_schema=False)
              .with_columns(pl.col("score").cast(pl.Float64)).select(*keys, "score")
              .sort(keys))
    answer = (pl.from_pandas(served[served["product_id"].isin(text_rows["product_id"])])
              .select(*keys, "score").sort(keys))
    assert tagged.select(keys).rows() == answer.select(keys).rows()
    np.testing.assert_allclose(tagged["score"].to_numpy(), answer["score"].to_numpy(),
                               rtol=0, atol=1e-6)
