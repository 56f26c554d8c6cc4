"""The tagger and its GAN refiner as one MLflow pyfunc model: raw product rows in, refined tags
out (one row per product and tag, with ``source`` saying whether the tagger alone gives it).

``log_refiner`` logs a tagger bundle folder (``bundle.save_bundle``) as the artifact ``bundle``
and a refiner folder (``refiner.save_refiner``) as the artifact ``refiner`` of a pyfunc model
whose ``RefinerModel`` wraps ``serving.tag`` with the refiner. It follows ``pyfunc.log_tagger``: the
model is logged "from code" and the ``tag_pipeline`` package travels with it as a code path,
with the same pinned requirements and input contract.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models.model import ModelInfo

import tag_pipeline
from tag_pipeline.lib.models.bundle import TaggerBundle, load_bundle
from tag_pipeline.lib.models.pyfunc import (
    BUNDLE_ARTIFACT,
    default_input_example,
    feature_names,
    image_root_of,
    is_missing,
    model_signature,
    serving_requirements,
    tag_rows,
)
from tag_pipeline.lib.models.refiner import Refiner, load_refiner
from tag_pipeline.lib.models.serving import tag

REFINER_ARTIFACT = "refiner"
# The model file MLflow runs to get the model (its "models from code" format).
_MODEL_CODE = """\
import mlflow

from tag_pipeline.lib.models.refiner_pyfunc import RefinerModel

mlflow.models.set_model(RefinerModel())
"""


class RefinerModel(mlflow.pyfunc.PythonModel):
    """Tags raw product rows with the logged tagger bundle, refined by the logged refiner."""

    def __init__(self) -> None:
        self._bundle: TaggerBundle | None = None
        self._refiner: Refiner | None = None
        self._image_root: Path | None = None

    @property
    def bundle(self) -> TaggerBundle:
        """The loaded tagger bundle (after ``load_context``)."""
        if self._bundle is None:
            raise RuntimeError("RefinerModel has no tagger bundle: load it with "
                               "mlflow.pyfunc.load_model")
        return self._bundle

    @property
    def refiner(self) -> Refiner:
        """The loaded refiner (after ``load_context``)."""
        if self._refiner is None:
            raise RuntimeError("RefinerModel has no refiner: load it with "
                               "mlflow.pyfunc.load_model")
        return self._refiner

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Load the artifacts ``bundle`` and ``refiner``; the image root as
        ``pyfunc.image_root_of``."""
        self._bundle = load_bundle(Path(context.artifacts[BUNDLE_ARTIFACT]))
        self._refiner = load_refiner(Path(context.artifacts[REFINER_ARTIFACT]))
        self._image_root = image_root_of(context)

    def predict(self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Columns product_id, tag, tag_type, facet, score, source (see
        ``serving.tag``) and warning (as ``pyfunc.TaggerModel.predict``)."""
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        return tag_rows(self.bundle, model_input, self._image_root,
                        lambda products: tag(self.bundle, products, self.refiner))


def log_refiner(refiner_dir: Path, tagger_bundle_dir: Path, name: str = "model",
                input_example: pd.DataFrame | None = None) -> ModelInfo:
    """Log a saved refiner and the tagger bundle it refines as one pyfunc model in the active
    MLflow run.

    Both are loaded once here to tag the input example, which with its output gives the
    signature (``pyfunc.model_signature``: the tagger's input contract).

    Args:
        refiner_dir: A folder written by ``save_refiner``.
        tagger_bundle_dir: A folder written by ``save_bundle``; the refiner's label space must
            be the bundle's.
        name: The model's name in the run.
        input_example: A few raw rows; defaults to ``pyfunc.default_input_example()``.

    Returns:
        The logged model's info (``model_uri`` for ``mlflow.register_model``).
    """
    if mlflow.active_run() is None:
        raise RuntimeError("log_refiner logs into the active MLflow run: call it inside "
                           "mlflow.start_run()")
    refiner_dir, tagger_bundle_dir = Path(refiner_dir), Path(tagger_bundle_dir)
    example = default_input_example() if input_example is None else input_example.copy()
    if "image_bytes" in example.columns:
        # as in log_tagger: MLflow's JSON decoding of a binary column fails on null
        example["image_bytes"] = [b"" if is_missing(v) else v for v in example["image_bytes"]]
    bundle = load_bundle(tagger_bundle_dir)
    names = feature_names(bundle)
    for name in names:
        if name not in example.columns:
            example[name] = None
        example[name] = [None if is_missing(v) else str(v) for v in example[name]]
    refiner = load_refiner(refiner_dir)
    output = tag_rows(bundle, example, None,
                      lambda products: tag(bundle, products, refiner))
    with tempfile.TemporaryDirectory(prefix="refiner_model_") as tmp:
        model_code = Path(tmp) / "refiner_model.py"
        model_code.write_text(_MODEL_CODE, encoding="utf-8")
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=model_code,
            artifacts={BUNDLE_ARTIFACT: str(tagger_bundle_dir),
                       REFINER_ARTIFACT: str(refiner_dir)},
            code_paths=[str(Path(tag_pipeline.__file__).resolve().parent)],
            signature=model_signature(example, output, names),
            input_example=example,
            pip_requirements=serving_requirements(),
            # declared so load_model(model_config={"image_root": ...}) is passed on
            model_config={"image_root": ""},
        )
