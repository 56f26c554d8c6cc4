"""The tagger as an MLflow pyfunc model: raw product rows in, one row per (product, tag) out.

``log_tagger`` logs a bundle folder (``bundle.save_bundle``) as the artifact ``bundle`` of a
pyfunc model whose ``TaggerModel`` wraps ``bundle.tag_frame``.

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
import tempfile
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
from tag_pipeline.lib.models.bundle import TaggerBundle, load_bundle, tag_frame

BUNDLE_ARTIFACT = "bundle"
# Distributions whose installed versions are pinned in the logged model's requirements.
SERVING_PACKAGES = ("tensorflow", "tensorflow-text", "keras", "keras-hub", "mlflow", "polars",
                    "numpy", "pandas", "pillow")
# The input contract: title is required, the rest optional; other columns are ignored.
INPUT_SCHEMA = Schema([
    ColSpec(DataType.string, "product_id", required=False),
    ColSpec(DataType.string, "title", required=True),
    ColSpec(DataType.string, "description", required=False),
    ColSpec(DataType.string, "image_path", required=False),
    ColSpec(DataType.binary, "image_bytes", required=False),
])
# The model file MLflow runs to get the model (its "models from code" format).
_MODEL_CODE = """\
import mlflow

from tag_pipeline.lib.models.pyfunc import TaggerModel

mlflow.models.set_model(TaggerModel())
"""


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def pandas_to_products(frame: pd.DataFrame, feature_names: tuple[str, ...] = ()
                       ) -> pl.DataFrame:
    """The input columns of ``tag_frame`` from a pandas frame (NaN and NA become null), with
    the raw values of the model's feature columns (``feature_names``) as strings."""
    columns: dict[str, pl.Series] = {}
    for name in [*(c.name for c in INPUT_SCHEMA.inputs), *feature_names]:
        if name not in frame.columns:
            continue
        values = [None if _missing(v) else v for v in frame[name].tolist()]
        if name == "image_bytes":
            columns[name] = pl.Series(name, values, dtype=pl.Binary)
        else:
            columns[name] = pl.Series(name, [None if v is None else str(v) for v in values],
                                      dtype=pl.Utf8)
    return pl.DataFrame(columns)


def tags_to_pandas(tags: pl.DataFrame) -> pd.DataFrame:
    """A tag frame as pandas (string columns as objects, score as float64)."""
    out = pd.DataFrame({name: tags[name].to_list() for name in tags.columns})
    return out.astype({"score": "float64"})


class TaggerModel(mlflow.pyfunc.PythonModel):
    """Tags raw product rows with the bundle logged as the artifact ``bundle``."""

    def __init__(self) -> None:
        self._bundle: TaggerBundle | None = None

    @property
    def bundle(self) -> TaggerBundle:
        """The loaded bundle (after ``load_context``)."""
        if self._bundle is None:
            raise RuntimeError("TaggerModel has no bundle: load it with mlflow.pyfunc.load_model")
        return self._bundle

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Load the bundle folder logged as the artifact ``bundle``."""
        self._bundle = load_bundle(Path(context.artifacts[BUNDLE_ARTIFACT]))

    def predict(self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Columns product_id, tag, tag_type, facet, score; see ``bundle.tag_frame``."""
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        return tags_to_pandas(tag_frame(self.bundle, pandas_to_products(
            model_input, feature_names(self.bundle))))


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


def _signature(input_example: pd.DataFrame, output_example: pd.DataFrame,
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
        example[name] = [None if _missing(v) else str(v) for v in example.get(
            name, pd.Series([None] * len(example)))]
    inferred = infer_signature(example, output_example)
    declared = {c.name for c in schema.inputs}
    undocumented = sorted(set(inferred.inputs.input_names()) - declared)
    if undocumented:
        raise ValueError(f"input example has column(s) {undocumented} the tagger does not "
                         f"read; it reads {sorted(declared)}")
    return ModelSignature(inputs=schema, outputs=inferred.outputs)


def log_tagger(bundle_dir: Path, name: str = "model",
               input_example: pd.DataFrame | None = None) -> ModelInfo:
    """Log a saved bundle as a pyfunc model in the active MLflow run.

    The bundle is loaded once here to tag the input example; the output example and the input
    example give the signature (see ``_signature``).

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
        example["image_bytes"] = [b"" if _missing(v) else v for v in example["image_bytes"]]
    bundle = load_bundle(bundle_dir)
    names = feature_names(bundle)
    for name in names:
        if name not in example.columns:
            example[name] = None
        example[name] = [None if _missing(v) else str(v) for v in example[name]]
    output = tags_to_pandas(tag_frame(bundle, pandas_to_products(example, names)))
    with tempfile.TemporaryDirectory(prefix="tagger_model_") as tmp:
        model_code = Path(tmp) / "tagger_model.py"
        model_code.write_text(_MODEL_CODE, encoding="utf-8")
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=model_code,
            artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
            code_paths=[str(Path(tag_pipeline.__file__).resolve().parent)],
            signature=_signature(example, output, names),
            input_example=example,
            pip_requirements=serving_requirements(),
        )
