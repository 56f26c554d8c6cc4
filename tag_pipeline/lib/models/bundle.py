"""A trained tagger as a folder of files, and tagging a frame of raw products with it.

A bundle folder holds everything needed to tag products the way the model was evaluated:

- ``model.keras``: the Keras model;
- ``vocab.txt``: the WordPiece vocabulary, one token per line (UTF-8);
- ``label_space.json``: the heads and their classes (``LabelSpace.to_json``);
- ``thresholds.json``: ``{head name: [threshold per class]}`` (``scoring.tune_thresholds``);
- ``config.json``: the hyper-parameters (``TaggerConfig.to_dict``), of which inference needs
  ``seq_len`` and ``image_size``.

``tag_frame`` preprocesses exactly as training did: the text is ``product_texts`` through the
bundle's tokenizer and images go through the same ``tf.data`` loader (``make_dataset``), so a
missing or corrupt image gives mask 0 and the tags come from the text. Raw encoded image bytes
(column ``image_bytes``) are written to files in a temporary folder for the duration of the
call and then read by that same loader; this keeps a single decoding path, so bytes and the
same image on disk give identical scores.

MLflow is not imported here; ``pyfunc`` wraps a bundle for the model registry.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import polars as pl
import tensorflow as tf

from tag_pipeline.lib.models.dataset import make_dataset
from tag_pipeline.lib.models.labels import LabelSpace
from tag_pipeline.lib.models.scoring import scores_to_tags

# Importing tagger registers PositiveWeightedBinaryCrossentropy with Keras, which a compiled
# model.keras names in its config.
from tag_pipeline.lib.models.tagger import TaggerConfig
from tag_pipeline.lib.models.text import RESERVED_TOKENS, make_tokenizer

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.txt"
SPACE_FILE = "label_space.json"
THRESHOLDS_FILE = "thresholds.json"
CONFIG_FILE = "config.json"
BUNDLE_FILES = (MODEL_FILE, VOCAB_FILE, SPACE_FILE, THRESHOLDS_FILE, CONFIG_FILE)

# Input columns of tag_frame; only title is required.
INPUT_COLUMNS = ("product_id", "title", "description", "image_path", "image_bytes")
TAG_SCHEMA = {"product_id": pl.Utf8, "tag": pl.Utf8, "tag_type": pl.Utf8, "facet": pl.Utf8,
              "score": pl.Float64}
_TEXT_COLUMNS = ("product_id", "title", "description", "image_path")


@dataclass(eq=False)
class TaggerBundle:
    """A trained model with the vocabulary, label space, thresholds and config it needs.

    The tokenizer and the compiled forward pass are built on first use and cached on the
    object, so tagging many frames with one bundle pays for them once.
    """

    model: keras.Model
    space: LabelSpace
    vocab: list[str]
    thresholds: dict[str, np.ndarray]
    config: TaggerConfig
    _tokenizer: Any = field(default=None, init=False, repr=False)
    _forward: Any = field(default=None, init=False, repr=False)

    @property
    def tokenizer(self) -> Any:
        """The WordPiece tokenizer of ``vocab`` at ``config.seq_len`` (built once)."""
        if self._tokenizer is None:
            self._tokenizer = make_tokenizer(self.vocab, self.config.seq_len)
        return self._tokenizer

    def scores(self, x: dict[str, tf.Tensor]) -> dict[str, np.ndarray]:
        """Scores per head name for one batch of model inputs (``make_dataset`` elements)."""
        if self._forward is None:
            size, seq_len = self.config.image_size, self.config.seq_len
            model = self.model

            # One trace for every batch size; no Python control flow, so no AutoGraph.
            @tf.function(autograph=False, input_signature=[{
                "tokens": tf.TensorSpec((None, seq_len), tf.int32),
                "image": tf.TensorSpec((None, size, size, 3), tf.float32),
                "image_mask": tf.TensorSpec((None, 1), tf.float32),
            }])
            def forward(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
                return model(inputs, training=False)

            self._forward = forward
        out = self._forward({"tokens": tf.cast(x["tokens"], tf.int32), "image": x["image"],
                             "image_mask": x["image_mask"]})
        return {h.name: out[h.output_name].numpy() for h in self.space.heads}


def _check_bundle(bundle: TaggerBundle, where: str) -> None:
    """Raise ValueError (naming ``where``) when the parts of a bundle do not fit together."""
    heads = {h.name: h for h in bundle.space.heads}
    if set(bundle.thresholds) != set(heads):
        raise ValueError(f"{where}: thresholds are for heads {sorted(bundle.thresholds)}, "
                         f"the label space has {sorted(heads)}")
    for name, thr in bundle.thresholds.items():
        if np.shape(thr) != (heads[name].size,):
            raise ValueError(f"{where}: head {name!r} has {heads[name].size} classes but "
                             f"{np.size(thr)} thresholds")
    outputs = set(bundle.model.output_names)
    missing = sorted({h.output_name for h in heads.values()} - outputs)
    if missing:
        raise ValueError(f"{where}: the model lacks output(s) {missing} of the label space; "
                         f"its outputs are {sorted(outputs)}")
    if tuple(bundle.vocab[: len(RESERVED_TOKENS)]) != RESERVED_TOKENS:
        raise ValueError(f"{where}: the vocabulary must start with {RESERVED_TOKENS}, "
                         f"starts with {bundle.vocab[: len(RESERVED_TOKENS)]}")
    if len(bundle.vocab) > bundle.config.vocab_size:
        raise ValueError(f"{where}: {len(bundle.vocab)} vocabulary tokens exceed the model's "
                         f"vocab_size {bundle.config.vocab_size}")
    bad = [t for t in bundle.vocab if not t or "\n" in t or "\r" in t]
    if bad:
        raise ValueError(f"{where}: vocabulary tokens must be non-empty single lines, "
                         f"got {bad[:3]!r}")


def save_bundle(bundle: TaggerBundle, directory: Path) -> Path:
    """Write the bundle's five files into ``directory`` (created if needed; files replaced).

    Returns:
        The folder.
    """
    directory = Path(directory)
    _check_bundle(bundle, f"tagger bundle for {directory}")
    directory.mkdir(parents=True, exist_ok=True)
    bundle.model.save(directory / MODEL_FILE)
    (directory / VOCAB_FILE).write_text("\n".join(bundle.vocab) + "\n", encoding="utf-8")
    (directory / SPACE_FILE).write_text(bundle.space.to_json(), encoding="utf-8")
    thresholds = {name: [float(t) for t in np.asarray(thr).ravel()]
                  for name, thr in bundle.thresholds.items()}
    (directory / THRESHOLDS_FILE).write_text(
        json.dumps(thresholds, ensure_ascii=False, indent=1), encoding="utf-8")
    (directory / CONFIG_FILE).write_text(
        json.dumps(bundle.config.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    return directory


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"tagger bundle file {path} is not valid UTF-8 JSON: {exc}") from exc


def load_bundle(directory: Path | str) -> TaggerBundle:
    """Read a bundle written by ``save_bundle``.

    The model is loaded without its training configuration (``compile=False``): inference
    needs neither the optimizer nor the losses.

    Raises:
        FileNotFoundError: the folder or one of its files is missing (both are named).
        ValueError: a file is unreadable or the files do not fit together.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"tagger bundle folder {directory} does not exist")
    missing = [name for name in BUNDLE_FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"tagger bundle folder {directory} lacks {', '.join(missing)}")
    text = (directory / VOCAB_FILE).read_text(encoding="utf-8")
    vocab = text.removesuffix("\n").split("\n") if text else []
    try:
        space = LabelSpace.from_json((directory / SPACE_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"tagger bundle file {directory / SPACE_FILE} is not a label space: "
                         f"{exc!r}") from exc
    raw = _read_json(directory / THRESHOLDS_FILE)
    if not isinstance(raw, dict):
        raise ValueError(f"tagger bundle file {directory / THRESHOLDS_FILE} must hold an "
                         "object {head name: [thresholds]}")
    thresholds = {str(k): np.asarray(v, dtype=np.float64) for k, v in raw.items()}
    config = TaggerConfig.from_dict(_read_json(directory / CONFIG_FILE))
    model = keras.models.load_model(directory / MODEL_FILE, compile=False)
    bundle = TaggerBundle(model=model, space=space, vocab=vocab, thresholds=thresholds,
                          config=config)
    _check_bundle(bundle, f"tagger bundle folder {directory}")
    return bundle


def _model_input(products: pl.DataFrame, image_dir: Path) -> pl.DataFrame:
    """product_id, title, description, image_path; image bytes written under ``image_dir``."""
    if "title" not in products.columns:
        raise ValueError(f"products frame lacks the required column 'title'; "
                         f"has {products.columns}")
    n = products.height
    columns = {
        "product_id": (products["product_id"] if "product_id" in products.columns
                       else pl.Series([str(i) for i in range(n)], dtype=pl.Utf8)),
        "title": products["title"],
        "description": (products["description"] if "description" in products.columns
                        else pl.Series([""] * n, dtype=pl.Utf8)),
        "image_path": (products["image_path"] if "image_path" in products.columns
                       else pl.Series([None] * n, dtype=pl.Utf8)),
    }
    for name in _TEXT_COLUMNS:
        series = columns[name]
        if series.dtype not in (pl.Utf8, pl.Null) and not series.dtype.is_integer():
            raise ValueError(f"products column {name!r} must hold strings, has {series.dtype}")
        columns[name] = series.cast(pl.Utf8).alias(name)
    if columns["product_id"].null_count():
        raise ValueError("products column 'product_id' has null values")
    if "image_bytes" in products.columns:
        blobs = products["image_bytes"]
        if blobs.dtype not in (pl.Binary, pl.Null):
            raise ValueError(f"products column 'image_bytes' must hold raw bytes (Binary), "
                             f"has {blobs.dtype}")
        paths = columns["image_path"].to_list()
        for i, data in enumerate(blobs.to_list()):
            if data:
                path = image_dir / f"{i}.img"
                path.write_bytes(data)
                paths[i] = str(path)
        columns["image_path"] = pl.Series("image_path", paths, dtype=pl.Utf8)
    return pl.DataFrame(columns)


def tag_frame(bundle: TaggerBundle, products: pl.DataFrame, batch_size: int = 512
              ) -> pl.DataFrame:
    """Tags of each product with their scores, as one row per (product, tag).

    Args:
        bundle: The tagger.
        products: Raw products. ``title`` is required; optional are ``product_id`` (default:
            the row number as a string), ``description``, ``image_path`` (null: no image) and
            ``image_bytes`` (raw encoded image, used instead of ``image_path`` when not null).
            Other columns are ignored. A missing or undecodable image is ignored.
        batch_size: Products per model batch; images are read batch by batch.

    Returns:
        Columns product_id, tag, tag_type, facet, score (in [0, 1]), products in input order
        and within a product heads in model order, best score first. A product whose scores
        pass no threshold has no row.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    columns: dict[str, list] = {name: [] for name in TAG_SCHEMA}
    with tempfile.TemporaryDirectory(prefix="tagger_images_") as tmp:
        frame = _model_input(products, Path(tmp))
        if frame.height == 0:
            return pl.DataFrame(columns, schema=TAG_SCHEMA)
        ids = frame["product_id"].to_list()
        dataset = make_dataset(frame, None, bundle.tokenizer, image_size=bundle.config.image_size,
                               batch_size=batch_size)
        start = 0
        for x in dataset:
            scores = bundle.scores(x)
            batch_tags = scores_to_tags(scores, bundle.thresholds, bundle.space)
            for offset, tags in enumerate(batch_tags):
                pid = ids[start + offset]
                for tag_type, facet, tag, score in tags:
                    columns["product_id"].append(pid)
                    columns["tag"].append(tag)
                    columns["tag_type"].append(tag_type)
                    columns["facet"].append(facet)
                    columns["score"].append(score)
            start += len(batch_tags)
    if start != len(ids):
        raise RuntimeError(f"tagged {start} of {len(ids)} products: the input pipeline "
                           "dropped rows")
    return pl.DataFrame(columns, schema=TAG_SCHEMA)
