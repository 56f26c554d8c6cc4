"""A trained tagger as a folder of files, and tagging a frame of raw products with it.

A bundle folder holds everything needed to tag products the way the model was evaluated:

- ``model.keras``: the Keras model;
- ``vocab.txt``: the WordPiece vocabulary, one token per line (UTF-8);
- ``label_space.json``: the heads and their classes (``LabelSpace.to_json``);
- ``thresholds.json``: ``{head name: [threshold per class]}`` (``scoring.tune_thresholds``);
- ``config.json``: the hyper-parameters (``TaggerConfig.to_dict``), of which inference needs
  ``seq_len`` and ``image_size``;
- optional, for the fused tagger (``fusion``): ``linear.joblib`` (the calibrated linear n-gram
  backend, ``baseline.BaselineTagger``), ``fusion.json`` (per-head fusion settings and each
  backend's own thresholds, for the ablation) and ``inputs.json`` (the feature columns the
  models read, ``catalog_features``). ``thresholds.json`` then holds the thresholds of the
  fused scores. A bundle without them is the CNN + BiLSTM alone;
- optional, where the fusion uses it: ``embedding.joblib`` (the embedding backend,
  ``embeddings.EmbeddingBackend``: logistic regressions on pretrained sentence vectors; the
  vectors of a text come from the embedding cache, or are encoded once and cached);
- optional, where the tagger was trained on photos: ``photo_colour.joblib`` (the photo-colour
  backend, ``photo_colour.PhotoColourBackend``: logistic regressions on the photo's colour
  histogram; the fusion mixes it into the heads whose ``photo_weight`` is above 0).

A bundle is the trained model as an artifact: its files, and the CNN + BiLSTM's forward pass
(``TaggerBundle.network``). Tagging products with it is the serving path of ``serving``:
inputs (``inputs``) -> backends (``backends``) -> fusion -> refiner -> thresholds -> tags ->
explanations; this module calls none of them.

Products without a usable image skip the CNN, most of the model's cost: with image mask 0 the
model multiplies the CNN's features by 0, so the same layers run without the CNN give the same
scores. That shortcut is checked against the whole model once per bundle and left off if they
disagree (e.g. after a change of architecture). Products with an image go through the same
model with its CNN batch norms folded into the convolutions (``tagger.fold_batch_norm``: the
same scores up to float rounding, about half the CNN's inference cost), also checked once per
bundle against the model as trained. Both passes also return the ``fused`` layer's product
embedding, the refiner's input, so the refiner reads exactly what the tagger computed.

MLflow is not imported here; ``pyfunc`` wraps a bundle for the model registry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tag_pipeline.lib.models.baseline import BaselineTagger
from tag_pipeline.lib.models.catalog_features import (
    FeatureColumn,
    columns_from_json,
    columns_to_json,
)
from tag_pipeline.lib.models.fusion import Fusion
from tag_pipeline.lib.models.labels import LabelSpace
from tag_pipeline.lib.models.tagger import TaggerConfig, fold_batch_norm
from tag_pipeline.lib.models.text import RESERVED_TOKENS, make_tokenizer

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.txt"
SPACE_FILE = "label_space.json"
THRESHOLDS_FILE = "thresholds.json"
CONFIG_FILE = "config.json"
BUNDLE_FILES = (MODEL_FILE, VOCAB_FILE, SPACE_FILE, THRESHOLDS_FILE, CONFIG_FILE)
LINEAR_FILE = "linear.joblib"
EMBEDDING_FILE = "embedding.joblib"
PHOTO_FILE = "photo_colour.joblib"
FUSION_FILE = "fusion.json"
INPUTS_FILE = "inputs.json"

# When a bundle traces its tokenizer and model (see TaggerBundle.compile): for a frame of at
# least this many products, or once it has scored this many batches.
COMPILE_MIN_ROWS = 256
COMPILE_AFTER_BATCHES = 16

# Layers of the text half of the tagger (tagger.build_tagger) after its text features, in the
# order they are applied; the text features are the output of the first of
# _TEXT_FEATURE_LAYERS the model has (bundles from before the n-gram branch end in the BiLSTM).
_TEXT_FEATURE_LAYERS = ("text_features", "text_bilstm")
_TEXT_PATH_LAYERS = ("masked_image", "joined", "joined_dropout", "fused", "fused_dropout")
# The key of the ``fused`` layer's product embedding among the network's outputs.
FEATURES = "__fused__"


def _full_forward(model: keras.Model, space: LabelSpace
                  ) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The whole model, in inference mode: its head outputs and, under ``FEATURES``, the
    ``fused`` layer's product embedding (what the refiner reads), when it has that layer."""
    try:
        fused = model.get_layer("fused").output
        outputs = {h.output_name: model.get_layer(h.output_name).output for h in space.heads}
    except ValueError:
        return lambda inputs: model(inputs, training=False)
    with_features = keras.Model(model.input, {**outputs, FEATURES: fused})
    return lambda inputs: with_features(inputs, training=False)


def _text_forward(model: keras.Model, space: LabelSpace
                  ) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """The model for products without an image, skipping the CNN; None if the layers differ.
    Like ``_full_forward`` it returns the ``fused`` embedding under ``FEATURES`` too.

    With image mask 0 the ``masked_image`` layer multiplies the CNN's features by 0, so they
    are exact zeros whatever the pixels; the CNN is most of the model's cost. The text branch
    (embedding, BiLSTM, n-gram convolutions) runs as the model's own sub-graph from the
    ``tokens`` input to its text features, so it needs no change when that branch does.
    """
    try:
        layer = {name: model.get_layer(name) for name in _TEXT_PATH_LAYERS}
        heads = {h.output_name: model.get_layer(h.output_name) for h in space.heads}
        names = {part.name for part in model.layers}
        feature_layer = next(n for n in _TEXT_FEATURE_LAYERS if n in names)
        text_branch = keras.Model(model.get_layer("tokens").output,
                                  model.get_layer(feature_layer).output)
    except (ValueError, StopIteration):
        return None
    width = int(layer["masked_image"].output.shape[-1])

    def forward(inputs: dict[str, Any]) -> dict[str, Any]:
        tokens = tf.convert_to_tensor(inputs["tokens"], tf.int32)
        text = text_branch(tokens, training=False)
        image_features = tf.zeros((tf.shape(tokens)[0], width), text.dtype)
        joined = layer["joined"]([text, image_features, inputs["image_mask"]])
        fused = layer["fused"](layer["joined_dropout"](joined, training=False))
        out = layer["fused_dropout"](fused, training=False)
        return {**{name: head(out) for name, head in heads.items()}, FEATURES: fused}

    return forward


def _folded_model(model: keras.Model, space: LabelSpace, config: TaggerConfig
                  ) -> keras.Model | None:
    """``model`` with its CNN batch norms folded into the convolutions (``fold_batch_norm``),
    or None when its layers are not the ones ``build_tagger`` gives."""
    try:
        return fold_batch_norm(model, space, config)
    except (ValueError, IndexError):
        return None


def _compiled(function: Callable, spec: Any) -> Callable:
    """``function`` as a ``tf.function`` traced once for every batch size."""
    # no Python control flow inside, so AutoGraph has nothing to convert
    return tf.function(function, autograph=False, input_signature=[spec])


@dataclass(frozen=True)
class _Forward:
    """How a bundle runs its model, built once per bundle (see ``TaggerBundle.compile``).

    Attributes:
        tokenize: strings -> token ids.
        full: the whole model (the CNN's batch norms folded in when ``folded``).
        text: the text-only shortcut for products without an image, or None when the
            architecture does not allow it or it disagreed with ``full`` on a probe.
        compiled: whether the three are traced ``tf.function``s.
        folded: whether ``full`` is the batch-norm-folded copy of the model.
    """

    tokenize: Callable[[Any], Any]
    full: Callable[[dict[str, Any]], dict[str, Any]]
    text: Callable[[dict[str, Any]], dict[str, Any]] | None
    compiled: bool
    folded: bool


@dataclass(eq=False)
class TaggerBundle:
    """A trained model with the vocabulary, label space, thresholds and config it needs.

    The tokenizer and the model run eagerly until ``compile`` traces them into
    ``tf.function``s (once for every batch size, cached on the object). Tracing costs one to
    three seconds, far more than tagging a few products eagerly, and makes large batches
    several times faster; ``serving`` compiles for a frame of ``COMPILE_MIN_ROWS`` or more
    products, and ``network`` after ``COMPILE_AFTER_BATCHES`` batches, so a server of small
    requests compiles too once the eager overhead has added up to about the cost of tracing.
    """

    model: keras.Model
    space: LabelSpace
    vocab: list[str]
    thresholds: dict[str, np.ndarray]
    config: TaggerConfig
    # the fused tagger's linear backend and fusion (None: the CNN + BiLSTM alone)
    linear: BaselineTagger | None = None
    fusion: Fusion | None = None
    # each backend's own thresholds {backend: {head: thresholds}}, for the ablation
    backend_thresholds: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    feature_columns: tuple[FeatureColumn, ...] = ()
    # the text columns its training products had (None: not recorded, an older bundle)
    text_columns: tuple[str, ...] | None = None
    # the embedding backend (embeddings.EmbeddingBackend), where the fusion mixes it in
    embedding: Any = None
    # the photo-colour backend (photo_colour.PhotoColourBackend), where it was trained
    photo: Any = None
    _tokenizer: Any = field(default=None, init=False, repr=False)
    _forward: _Forward | None = field(default=None, init=False, repr=False)
    _batches: int = field(default=0, init=False, repr=False)

    @property
    def tokenizer(self) -> Any:
        """The WordPiece tokenizer of ``vocab`` at ``config.seq_len`` (built once)."""
        if self._tokenizer is None:
            self._tokenizer = make_tokenizer(self.vocab, self.config.seq_len)
        return self._tokenizer

    def _functions(self) -> _Forward:
        if self._forward is None:
            tokenizer = self.tokenizer
            folded = _folded_model(self.model, self.space, self.config)
            if folded is not None and not self._folded_agrees(folded):
                folded = None
            text = _text_forward(self.model, self.space)
            if text is not None and not self._text_path_agrees(text):
                text = None
            self._forward = _Forward(tokenize=lambda strings: tokenizer(strings),
                                     full=_full_forward(folded or self.model, self.space),
                                     text=text,
                                     compiled=False, folded=folded is not None)
        return self._forward

    def _text_path_agrees(self, text: Callable) -> bool:
        # The shortcut is used only if it agrees with the whole model on imageless products,
        # so a change of the architecture falls back to the whole model instead of giving
        # different scores.
        rng = np.random.default_rng(0)
        tokens = rng.integers(1, len(self.vocab), (4, self.config.seq_len)).astype(np.int32)
        tokens[:, self.config.seq_len // 2:] = 0
        size = self.config.image_size
        probe = {"tokens": tokens, "image_mask": np.zeros((4, 1), np.float32)}
        full = self.model({**probe, "image": np.zeros((4, size, size, 3), np.float32)},
                          training=False)
        short = text(probe)
        return all(np.allclose(full[k], short[k], rtol=0, atol=1e-6) for k in full)

    def _folded_agrees(self, folded: keras.Model) -> bool:
        # Folding is exact up to float rounding; a model it does not fit keeps its own layers.
        rng = np.random.default_rng(1)
        size = self.config.image_size
        tokens = rng.integers(1, len(self.vocab), (4, self.config.seq_len)).astype(np.int32)
        probe = {"tokens": tokens, "image_mask": np.ones((4, 1), np.float32),
                 "image": rng.random((4, size, size, 3), dtype=np.float32)}
        full, fast = self.model(probe, training=False), folded(probe, training=False)
        return all(np.allclose(full[k], fast[k], rtol=0, atol=1e-5) for k in full)

    def compile(self) -> None:
        """Trace the tokenizer and the forward passes (a no-op when already compiled)."""
        run = self._functions()
        if run.compiled:
            return
        seq_len, size = self.config.seq_len, self.config.image_size
        tokens = tf.TensorSpec((None, seq_len), tf.int32)
        mask = tf.TensorSpec((None, 1), tf.float32)
        self._forward = replace(
            run, compiled=True,
            tokenize=_compiled(run.tokenize, tf.TensorSpec((None,), tf.string)),
            full=_compiled(run.full, {
                "tokens": tokens, "image": tf.TensorSpec((None, size, size, 3), tf.float32),
                "image_mask": mask}),
            text=(None if run.text is None
                  else _compiled(run.text, {"tokens": tokens, "image_mask": mask})))

    @property
    def uses_folded_cnn(self) -> bool:
        """Whether products with an image go through the model with its CNN batch norms
        folded into the convolutions (see ``tagger.fold_batch_norm``)."""
        return self._functions().folded

    @property
    def uses_text_shortcut(self) -> bool:
        """Whether products without an image skip the CNN (see ``_text_forward``)."""
        return self._functions().text is not None

    def tokenize(self, texts: list[str]) -> np.ndarray:
        """Token ids (len(texts), seq_len) int32, as the tokenizer gives them in training."""
        ids = self._functions().tokenize(tf.constant(texts, dtype=tf.string))
        return np.asarray(ids).astype(np.int32)

    def network(self, x: dict[str, Any]) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """The CNN + BiLSTM's scores per head name for one batch of model inputs
        (``tokens``, ``image``, ``image_mask``, as ``inputs.model_inputs`` gives them), and
        its ``fused`` product embeddings (products, fused_dim), the refiner's input (None
        for a model without that layer). Products without an image skip the CNN (see
        ``_text_forward``); the others go through the whole model."""
        run = self._functions()
        tokens = np.asarray(x["tokens"], np.int32)
        mask = np.asarray(x["image_mask"], np.float32)
        has_image = mask[:, 0] > 0
        rows, parts = [], []
        if has_image.all() or run.text is None:
            rows.append(np.arange(len(tokens)))
            parts.append(run.full({"tokens": tokens, "image_mask": mask,
                                   "image": np.asarray(x["image"], np.float32)}))
        else:
            with_image, without = np.flatnonzero(has_image), np.flatnonzero(~has_image)
            rows.append(without)
            parts.append(run.text({"tokens": tokens[without], "image_mask": mask[without]}))
            if len(with_image):
                rows.append(with_image)
                parts.append(run.full({
                    "tokens": tokens[with_image], "image_mask": mask[with_image],
                    "image": np.asarray(x["image"], np.float32)[with_image]}))
        out = {}
        for head in self.space.heads:
            scores = np.empty((len(tokens), head.size), np.float32)
            for index, part in zip(rows, parts, strict=True):
                scores[index] = np.asarray(part[head.output_name])
            out[head.name] = scores
        features = None
        if all(FEATURES in part for part in parts):
            features = np.empty((len(tokens), int(parts[0][FEATURES].shape[-1])), np.float32)
            for index, part in zip(rows, parts, strict=True):
                features[index] = np.asarray(part[FEATURES])
        self._batches += 1
        if self._batches >= COMPILE_AFTER_BATCHES:
            self.compile()
        return out, features


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
    if (bundle.fusion is None) != (bundle.linear is None):
        raise ValueError(f"{where}: a fused bundle needs both its linear backend and its "
                         "fusion settings")
    if bundle.fusion is not None:
        bundle.fusion.check(bundle.space, where)
        if bundle.linear.space != bundle.space:
            raise ValueError(f"{where}: the linear backend was trained on another label space")
        if bundle.fusion.uses_embeddings and bundle.embedding is None:
            raise ValueError(f"{where}: the fusion mixes in the embedding backend, which the "
                             f"bundle lacks ({EMBEDDING_FILE})")
        if bundle.fusion.photo_heads and bundle.photo is None:
            raise ValueError(f"{where}: the fusion mixes the photo-colour backend into "
                             f"{list(bundle.fusion.photo_heads)}, which the bundle lacks "
                             f"({PHOTO_FILE})")
    if bundle.embedding is not None and bundle.embedding.space != bundle.space:
        raise ValueError(f"{where}: the embedding backend was trained on another label space")
    if bundle.photo is not None and bundle.photo.space != bundle.space:
        raise ValueError(f"{where}: the photo-colour backend was trained on another label "
                         "space")


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
    if bundle.feature_columns or bundle.text_columns is not None:
        inputs: dict[str, Any] = {"feature_columns": columns_to_json(bundle.feature_columns)}
        if bundle.text_columns is not None:
            inputs["text_columns"] = list(bundle.text_columns)
        (directory / INPUTS_FILE).write_text(json.dumps(inputs, indent=1), encoding="utf-8")
    if bundle.fusion is not None:
        import joblib

        joblib.dump(bundle.linear, directory / LINEAR_FILE)
        if bundle.embedding is not None:
            joblib.dump(bundle.embedding, directory / EMBEDDING_FILE)
        if bundle.photo is not None:
            joblib.dump(bundle.photo, directory / PHOTO_FILE)
        backend_thresholds = {
            b: {h: [float(t) for t in np.asarray(v).ravel()] for h, v in thr.items()}
            for b, thr in bundle.backend_thresholds.items()}
        (directory / FUSION_FILE).write_text(json.dumps(
            {**bundle.fusion.to_dict(), "backend_thresholds": backend_thresholds},
            ensure_ascii=False, indent=1), encoding="utf-8")
    return directory


def read_json(path: Path, what: str = "tagger bundle file") -> Any:
    """A saved model file's JSON; an error naming the file when it is not UTF-8 JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} {path} is not valid UTF-8 JSON: {exc}") from exc


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
    raw = read_json(directory / THRESHOLDS_FILE)
    if not isinstance(raw, dict):
        raise ValueError(f"tagger bundle file {directory / THRESHOLDS_FILE} must hold an "
                         "object {head name: [thresholds]}")
    try:
        thresholds = {str(k): np.asarray(v, dtype=np.float64) for k, v in raw.items()}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tagger bundle file {directory / THRESHOLDS_FILE} holds a "
                         f"non-numeric threshold: {exc}") from exc
    try:
        config = TaggerConfig.from_dict(read_json(directory / CONFIG_FILE))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tagger bundle file {directory / CONFIG_FILE}: {exc}") from exc
    model = keras.models.load_model(directory / MODEL_FILE, compile=False)
    feature_columns: tuple[FeatureColumn, ...] = ()
    text_columns: tuple[str, ...] | None = None
    if (directory / INPUTS_FILE).is_file():
        try:
            inputs = read_json(directory / INPUTS_FILE)
            feature_columns = columns_from_json(inputs.get("feature_columns"))
            if inputs.get("text_columns") is not None:
                text_columns = tuple(str(c) for c in inputs["text_columns"])
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"tagger bundle file {directory / INPUTS_FILE}: {exc}") from exc
    linear = fusion = embedding = photo = None
    backend_thresholds: dict[str, dict[str, np.ndarray]] = {}
    if (directory / FUSION_FILE).is_file():
        import joblib

        if not (directory / LINEAR_FILE).is_file():
            raise FileNotFoundError(f"tagger bundle folder {directory} has {FUSION_FILE} but "
                                    f"lacks {LINEAR_FILE}")
        raw_fusion = read_json(directory / FUSION_FILE)
        try:
            fusion = Fusion.from_dict(raw_fusion)
            backend_thresholds = {
                b: {h: np.asarray(v, np.float64) for h, v in thr.items()}
                for b, thr in raw_fusion.get("backend_thresholds", {}).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"tagger bundle file {directory / FUSION_FILE}: {exc!r}") from exc
        linear = joblib.load(directory / LINEAR_FILE)
        if (directory / EMBEDDING_FILE).is_file():
            embedding = joblib.load(directory / EMBEDDING_FILE)
        if (directory / PHOTO_FILE).is_file():
            photo = joblib.load(directory / PHOTO_FILE)
    bundle = TaggerBundle(model=model, space=space, vocab=vocab, thresholds=thresholds,
                          config=config, linear=linear, fusion=fusion,
                          backend_thresholds=backend_thresholds,
                          feature_columns=feature_columns, text_columns=text_columns,
                          embedding=embedding, photo=photo)
    _check_bundle(bundle, f"tagger bundle folder {directory}")
    return bundle
