"""The GAN tag refiner: a conditional WGAN-GP that corrects the tagger's tag sets.

What it is for: the tagger decides every tag on its own (one threshold per tag, one arg-max
per single-valued facet), so it can give combinations real products never have and miss a tag
scored just under its threshold. The refiner looks at the whole tag set of a product at once.

Design:

- **Inputs.** For each product the tagger's fused embedding (the output of its ``fused``
  layer, ``serving.tagger_outputs``) and its scores of every head, concatenated in
  label-space order (``K`` columns in all).
- **Generator** ``G(embedding, scores, noise)``: an MLP that outputs a residual in logit
  space, bounded to ``+-residual_scale`` by a tanh. It is added to ``logit(score)`` of a
  sigmoid head's tag, or to ``log(score)`` of a softmax head's class, and squashed again by
  the head's own activation (``ResidualRefine``), so softmax heads stay distributions and
  sigmoid tags stay in [0, 1]. The residual's last layer starts at zero: before training the
  refiner returns the tagger's scores unchanged.
- **Critic** ``D(embedding, tag vector)`` judges (product, tag set) pairs: real pairs are the
  embedding with the true multi-hot tags of a TRAINING product, fake pairs the same embedding
  with the generator's refined scores. Cells of a softmax head whose value is unknown for the
  product (an all-zero truth row) get the fake's values in the real vector too, so an unknown
  facet says nothing to the critic.
- **Losses.** The critic minimises ``D(fake) - D(real) + gp_weight * GP`` (WGAN-GP: the
  gradient penalty on random interpolations of real and fake tag vectors), ``critic_steps``
  times per generator step. The generator minimises ``-D(fake) + supervised_weight * CE``,
  where CE is the tagger's own loss against the truth: per-row class-weighted, masked
  categorical cross-entropy for softmax heads and the positive-weighted binary cross-entropy
  summed over tags for sigmoid heads (``labels.sample_weights`` / ``positive_weights``).
  Adam with ``beta_1=0.5, beta_2=0.9`` as in the WGAN-GP paper.
- **Data discipline.** The refiner trains on the TRAINING split only; after each epoch the
  supervised loss on the VALIDATION split picks the epoch whose weights are kept; the refined
  scores' thresholds are tuned on the VALIDATION split (``scoring.tune_thresholds``); the
  ablation reports the TEST split only. One caveat is inherent: the tagger was fit on the same
  training split, so its training scores are more confident than its test scores.
- **Determinism.** Weights, shuffling and training noise come from ``config.seed``. At
  inference the refined scores are the mean over ``noise_samples`` fixed noise vectors drawn
  from ``config.seed``, so the same inputs always give the same outputs.

Decoding (``refine_decisions``): the refined scores pass the refined thresholds
(``scoring.apply_thresholds``), then, when ``config.repair`` is on, an explicit consistency
repair: going through a product's tags best score first, a tag is dropped if it is
incompatible with a tag already kept. The repair is a plain rule, not learned; the ablation
reports the tagger alone, the tagger with the repair alone, the refiner without the repair and
the full refiner, so each part's effect is visible.

Incompatibility (``Compatibility``), learned from the training labels only:

- two tags are an *incompatible pair* when no training product has both although, were they
  independent, at least ``min_expected`` (default 5) training products would, the expectation
  taken over the products whose facets of both tags are known;
- two tags of one *single-valued facet* (a facet in which no training product has two tags)
  are incompatible.

A product's tag set is *inconsistent* when it holds an incompatible pair. ``tag_set_stats``
reports the inconsistency rate, the coverage (share of the label space's tags given to at
least one product) and the mean number of tags per product.

The gate (``refiner_gate``) applies the refiner only if the test micro-F1 of tagger+refiner is
not below the tagger's by more than a tolerance, and the refiner changes some test product's
tags or scores at all.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import polars as pl
import tensorflow as tf
from keras import layers, ops

from tag_pipeline.lib.models.bundle import read_json
from tag_pipeline.lib.models.comparison import Difference, paired_difference, product_counts
from tag_pipeline.lib.models.fusion import sigmoid_objective, softmax_objective
from tag_pipeline.lib.models.labels import (
    SIGMOID,
    SOFTMAX,
    LabelSpace,
    positive_weights,
    sample_weights,
)
from tag_pipeline.lib.models.refiner_config import GATE_TOLERANCE, RefinerConfig
from tag_pipeline.lib.models.refiner_tagsets import (
    Compatibility,
    build_compatibility,
    concat_heads,
    known_cells,
    repair,
    split_heads,
    tag_set_stats,
)
from tag_pipeline.lib.models.scoring import apply_thresholds, evaluate_heads, tune_thresholds

GENERATOR_FILE = "generator.keras"
CRITIC_FILE = "critic.keras"
SPACE_FILE = "label_space.json"
THRESHOLDS_FILE = "thresholds.json"
CONFIG_FILE = "refiner_config.json"
COMPATIBILITY_FILE = "compatibility.json"
HISTORY_FILE = "history.json"
HEADS_FILE = "refined_heads.json"
REFINER_FILES = (GENERATOR_FILE, SPACE_FILE, THRESHOLDS_FILE, CONFIG_FILE, COMPATIBILITY_FILE)
ABLATION_METRICS = ("micro_f1", "macro_f1", "samples_f1", "p_at_5", "ndcg_at_5",
                    "inconsistency_rate", "coverage", "tags_per_product")
_EPS = 1e-6


# ---------------------------------------------------------------------------------------------
# The networks.


@keras.saving.register_keras_serializable(package="tag_pipeline")
class ResidualRefine(layers.Layer):
    """Add a residual to each head's logits and squash with the head's own activation.

    Inputs ``[scores, residual]``, both (batch, K) with the heads side by side; a sigmoid
    head's cells become ``sigmoid(logit(p) + r)``, a softmax head's row ``softmax(log(p) + r)``.
    """

    def __init__(self, sizes: list[int], kinds: list[str], epsilon: float = _EPS,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sizes = [int(s) for s in sizes]
        self.kinds = [str(k) for k in kinds]
        self.epsilon = float(epsilon)

    def call(self, inputs: list[Any]) -> Any:
        scores, residual = inputs
        p = ops.clip(scores, self.epsilon, 1.0 - self.epsilon)
        parts, start = [], 0
        for size, kind in zip(self.sizes, self.kinds, strict=True):
            ph, rh = p[:, start:start + size], residual[:, start:start + size]
            if kind == SOFTMAX:
                parts.append(ops.softmax(ops.log(ph) + rh, axis=-1))
            else:
                parts.append(ops.sigmoid(ops.log(ph) - ops.log(1.0 - ph) + rh))
            start += size
        return ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"sizes": self.sizes, "kinds": self.kinds, "epsilon": self.epsilon})
        return config


def build_generator(embedding_dim: int, space: LabelSpace, config: RefinerConfig) -> keras.Model:
    """``G(embedding, scores, noise)`` -> refined scores (batch, K), heads side by side."""
    k = sum(h.size for h in space.heads)
    embedding = keras.Input((embedding_dim,), name="embedding")
    scores = keras.Input((k,), name="scores")
    noise = keras.Input((config.noise_dim,), name="noise")
    x = layers.Concatenate(name="g_inputs")([embedding, scores, noise])
    x = layers.Dense(config.hidden_dim, activation="relu", name="g_hidden1")(x)
    x = layers.Dense(config.hidden_dim, activation="relu", name="g_hidden2")(x)
    # zero-initialised: an untrained refiner returns the tagger's scores
    x = layers.Dense(k, activation="tanh", kernel_initializer="zeros", name="g_residual")(x)
    residual = layers.Rescaling(config.residual_scale, name="g_residual_scale")(x)
    refined = ResidualRefine([h.size for h in space.heads], [h.kind for h in space.heads],
                             name="refined")([scores, residual])
    return keras.Model({"embedding": embedding, "scores": scores, "noise": noise}, refined,
                       name="refiner_generator")


def build_critic(embedding_dim: int, space: LabelSpace, config: RefinerConfig) -> keras.Model:
    """``D(embedding, tags)`` -> one unbounded score per pair (higher: more like real)."""
    k = sum(h.size for h in space.heads)
    embedding = keras.Input((embedding_dim,), name="embedding")
    tags = keras.Input((k,), name="tags")
    x = layers.Concatenate(name="d_inputs")([embedding, tags])
    x = layers.Dense(config.hidden_dim, name="d_hidden1")(x)
    x = layers.LeakyReLU(0.2, name="d_act1")(x)
    x = layers.Dense(config.hidden_dim, name="d_hidden2")(x)
    x = layers.LeakyReLU(0.2, name="d_act2")(x)
    out = layers.Dense(1, name="d_out")(x)
    return keras.Model({"embedding": embedding, "tags": tags}, out, name="refiner_critic")


# ---------------------------------------------------------------------------------------------
# Training.


@dataclass
class Refiner:
    """A trained refiner with everything needed to use it the way it was evaluated."""

    generator: keras.Model
    critic: keras.Model | None
    space: LabelSpace
    config: RefinerConfig
    thresholds: dict[str, np.ndarray]
    compatibility: Compatibility
    history: dict[str, list[float]] = field(default_factory=dict)
    # the heads it refines (``select_refined_heads``); the others keep the tagger's scores and
    # thresholds. None: every head (a refiner trained without the choice)
    refined_heads: tuple[str, ...] | None = None

    @property
    def embedding_dim(self) -> int:
        """Width of the tagger embedding the generator expects."""
        return int(self.generator.input["embedding"].shape[-1])


def _loss_arrays(targets: Mapping[str, np.ndarray], space: LabelSpace
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Truth, known-cell mask and per-cell weights of the supervised loss, plus the
    per-column positive weight (1 for softmax columns)."""
    y = concat_heads(targets, space)
    known = known_cells(targets, space)
    rows = sample_weights(targets, space)
    weights = np.hstack([np.repeat(rows[h.name][:, None], h.size, axis=1) for h in space.heads])
    pos = positive_weights(space)
    pos_col = np.hstack([pos[h.name] if h.kind == SIGMOID else np.ones(h.size, np.float32)
                         for h in space.heads]).astype(np.float32)
    return y, known, weights.astype(np.float32), pos_col


def _supervised(y: Any, p: Any, weights: Any, pos_col: Any, sigmoid_col: Any) -> Any:
    """The tagger's loss: per-row mean of weighted CE cells (see the module docstring)."""
    p = tf.clip_by_value(p, 1e-7, 1.0 - 1e-7)
    bce = -(pos_col * y * tf.math.log(p) + (1.0 - y) * tf.math.log(1.0 - p))
    cce = -y * tf.math.log(p)
    cells = sigmoid_col * bce + (1.0 - sigmoid_col) * cce
    return tf.reduce_mean(tf.reduce_sum(weights * cells, axis=1))


def _inference_noise(config: RefinerConfig) -> np.ndarray:
    rng = np.random.default_rng(config.seed)
    return rng.standard_normal((config.noise_samples, config.noise_dim)).astype(np.float32)


def _refine_matrix(generator: keras.Model, config: RefinerConfig, embeddings: np.ndarray,
                   scores: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """Refined scores (n, K), averaged over the fixed inference noise."""
    noise = _inference_noise(config)
    out = np.empty_like(scores, dtype=np.float32)
    for start in range(0, len(scores), batch_size):
        emb = embeddings[start:start + batch_size]
        s = scores[start:start + batch_size]
        n = len(s)
        # all noise samples of a batch in one call: rows repeat per sample
        x = {"embedding": np.tile(emb, (len(noise), 1)), "scores": np.tile(s, (len(noise), 1)),
             "noise": np.repeat(noise, n, axis=0)}
        refined = np.asarray(generator(x, training=False)).reshape(len(noise), n, -1)
        out[start:start + n] = refined.mean(axis=0)
    return out


def _check_inputs(embeddings: np.ndarray, scores: Mapping[str, np.ndarray],
                  space: LabelSpace, where: str) -> tuple[np.ndarray, np.ndarray]:
    emb = np.asarray(embeddings, np.float32)
    if emb.ndim != 2:
        raise ValueError(f"{where}: embeddings must be (products, dim), got shape {emb.shape}")
    s = concat_heads(scores, space)
    if len(s) != len(emb):
        raise ValueError(f"{where}: {len(emb)} embeddings but {len(s)} score rows")
    return emb, s


def train_refiner(embeddings: np.ndarray, scores: dict[str, np.ndarray],
                  targets: dict[str, np.ndarray], space: LabelSpace, config: RefinerConfig, *,
                  val: tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]],
                  on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
                  tagger_thresholds: Mapping[str, np.ndarray] | None = None) -> Refiner:
    """Train the generator and critic on the TRAINING split; tune thresholds on validation.

    Args:
        embeddings: Fused tagger embeddings of the training products (``tagger_outputs``).
        scores: The tagger's scores per head for the same products.
        targets: Their targets per head (``encode_labels``).
        space: The tagger's label space.
        config: Hyper-parameters.
        val: (embeddings, scores, targets) of the VALIDATION split: picks the kept epoch
            (lowest supervised loss, if ``config.restore_best``) and the thresholds.
        on_epoch_end: Called after every epoch with the 0-based epoch and its losses
            (``critic``, ``adversarial``, ``supervised``, ``val_supervised``, ``seconds``).
        tagger_thresholds: The tagger's own thresholds. With ``config.select_heads`` the
            refiner refines only the heads where it beats the tagger on validation
            (``select_refined_heads``) and keeps these thresholds for the others; without
            them every head is refined.

    Returns:
        The refiner; ``history`` also holds ``val_supervised_tagger``, the validation loss of
        the tagger's own scores (what an untrained refiner gives).
    """
    config.check()
    emb, s = _check_inputs(embeddings, scores, space, "training split")
    val_emb, val_s = _check_inputs(val[0], val[1], space, "validation split")
    if len(emb) == 0:
        raise ValueError("the training split has no products to train the refiner on")
    y, known, weights, pos_col = _loss_arrays(targets, space)
    val_y, _, val_w, _ = _loss_arrays(val[2], space)
    if len(y) != len(emb) or len(val_y) != len(val_emb):
        raise ValueError(f"targets have {len(y)} training / {len(val_y)} validation rows, "
                         f"embeddings {len(emb)} / {len(val_emb)}")
    sigmoid_col = np.hstack([np.full(h.size, float(h.kind == SIGMOID), np.float32)
                             for h in space.heads])
    consts = {"pos": tf.constant(pos_col), "sig": tf.constant(sigmoid_col)}

    keras.utils.set_random_seed(config.seed)
    generator = build_generator(emb.shape[1], space, config)
    critic = build_critic(emb.shape[1], space, config)
    g_opt = keras.optimizers.Adam(config.learning_rate, beta_1=0.5, beta_2=0.9)
    d_opt = keras.optimizers.Adam(config.learning_rate, beta_1=0.5, beta_2=0.9)
    g_opt.build(generator.trainable_variables)
    d_opt.build(critic.trainable_variables)
    k = s.shape[1]
    spec = (tf.TensorSpec((None, emb.shape[1]), tf.float32), tf.TensorSpec((None, k), tf.float32),
            tf.TensorSpec((None, k), tf.float32), tf.TensorSpec((None, k), tf.float32),
            tf.TensorSpec((None, config.noise_dim), tf.float32), tf.TensorSpec((None, 1),
                                                                                tf.float32))

    # no Python control flow inside, so AutoGraph has nothing to convert
    @tf.function(input_signature=spec, autograph=False)
    def critic_step(e, sc, yt, kn, noise, alpha):
        fake = generator({"embedding": e, "scores": sc, "noise": noise}, training=True)
        fake = tf.stop_gradient(fake)
        real = yt * kn + fake * (1.0 - kn)  # unknown facets: no signal to the critic
        mixed = alpha * real + (1.0 - alpha) * fake
        with tf.GradientTape() as tape:
            with tf.GradientTape() as inner:
                inner.watch(mixed)
                d_mixed = critic({"embedding": e, "tags": mixed}, training=True)
            grad = inner.gradient(d_mixed, mixed)
            norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=1) + 1e-12)
            gp = tf.reduce_mean(tf.square(norm - 1.0))
            d_real = critic({"embedding": e, "tags": real}, training=True)
            d_fake = critic({"embedding": e, "tags": fake}, training=True)
            loss = tf.reduce_mean(d_fake) - tf.reduce_mean(d_real) + config.gp_weight * gp
        grads = tape.gradient(loss, critic.trainable_variables)
        d_opt.apply_gradients(zip(grads, critic.trainable_variables, strict=True))
        return loss

    g_spec = (*spec[:5], tf.TensorSpec((None, k), tf.float32))

    @tf.function(input_signature=g_spec, autograph=False)
    def generator_step(e, sc, yt, kn, noise, w):
        with tf.GradientTape() as tape:
            fake = generator({"embedding": e, "scores": sc, "noise": noise}, training=True)
            adversarial = -tf.reduce_mean(critic({"embedding": e, "tags": fake}, training=True))
            supervised = _supervised(yt, fake, w, consts["pos"], consts["sig"])
            loss = config.adversarial_weight * adversarial + config.supervised_weight * supervised
        grads = tape.gradient(loss, generator.trainable_variables)
        g_opt.apply_gradients(zip(grads, generator.trainable_variables, strict=True))
        return adversarial, supervised

    def val_loss() -> float:
        refined = _refine_matrix(generator, config, val_emb, val_s)
        return float(_supervised(tf.constant(val_y), tf.constant(refined), tf.constant(val_w),
                                 consts["pos"], consts["sig"]))

    history: dict[str, list[float]] = {"critic": [], "adversarial": [], "supervised": [],
                                       "val_supervised": [], "seconds": []}
    history["val_supervised_tagger"] = [val_loss()]
    rng = np.random.default_rng(config.seed)
    best = (math.inf, generator.get_weights())
    n, bs = len(emb), config.batch_size
    for epoch in range(config.epochs):
        started = time.perf_counter()
        order = rng.permutation(n)
        sums = np.zeros(3)
        steps = 0
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            batch = (emb[idx], s[idx], y[idx], known[idx])
            for _ in range(config.critic_steps):
                noise = rng.standard_normal((len(idx), config.noise_dim)).astype(np.float32)
                alpha = rng.uniform(size=(len(idx), 1)).astype(np.float32)
                sums[0] += float(critic_step(*batch, noise, alpha)) / config.critic_steps
            noise = rng.standard_normal((len(idx), config.noise_dim)).astype(np.float32)
            adversarial, supervised = generator_step(*batch, noise, weights[idx])
            sums[1:] += (float(adversarial), float(supervised))
            steps += 1
        logs = {"critic": sums[0] / steps, "adversarial": sums[1] / steps,
                "supervised": sums[2] / steps, "val_supervised": val_loss(),
                "seconds": time.perf_counter() - started}
        for key, value in logs.items():
            history[key].append(float(value))
        if logs["val_supervised"] < best[0]:
            best = (logs["val_supervised"], generator.get_weights())
        if on_epoch_end is not None:
            on_epoch_end(epoch, dict(logs))
    if config.restore_best:
        generator.set_weights(best[1])
    history["best_epoch"] = [float(int(np.argmin(history["val_supervised"])))
                             if config.restore_best else float(config.epochs - 1)]

    refined_val = split_heads(_refine_matrix(generator, config, val_emb, val_s), space)
    thresholds = tune_thresholds(refined_val, val[2], space)
    compatibility = build_compatibility(targets, space, config.min_expected)
    refined_heads = None
    if config.select_heads and tagger_thresholds is not None:
        refined_heads = select_refined_heads(split_heads(val_s, space), refined_val, val[2],
                                             space, config.head_macro_weight)
        for head in space.heads:
            if head.name not in refined_heads:
                thresholds[head.name] = np.asarray(tagger_thresholds[head.name], np.float64)
    return Refiner(generator=generator, critic=critic, space=space, config=config,
                   thresholds=thresholds, compatibility=compatibility, history=history,
                   refined_heads=refined_heads)


def select_refined_heads(tagger_scores: Mapping[str, np.ndarray],
                         refined_scores: Mapping[str, np.ndarray],
                         truth: Mapping[str, np.ndarray], space: LabelSpace,
                         macro_weight: float = 0.5) -> tuple[str, ...]:
    """The heads whose refined VALIDATION scores beat the tagger's, so the refiner stays only
    where it helps.

    A head is refined when its objective (the fusion's: accuracy + ``macro_weight`` x
    macro-F1 for a single-valued head, micro-F1 after per-tag thresholds for a multi-valued
    one) gains more than one validation product's worth over the tagger's scores, and gains
    on each half of the validation rows too (a gain carried by a few products of one half is
    noise).
    """
    every = np.arange(len(next(iter(truth.values())))) if truth else np.arange(0)
    halves = (every[0::2], every[1::2])
    kept = []
    for head in space.heads:
        y = np.asarray(truth[head.name])

        def objective(scores: Mapping[str, np.ndarray], rows: np.ndarray,
                      head=head, y=y) -> float:
            s = np.asarray(scores[head.name])[rows]
            return (softmax_objective(s, y[rows], macro_weight) if head.kind == SOFTMAX
                    else sigmoid_objective(s, y[rows]))

        known = int((y > 0).any(axis=1).sum()) if head.kind == SOFTMAX else len(y)
        gain = objective(refined_scores, every) - objective(tagger_scores, every)
        if not gain > 1.0 / max(known, 1):  # NaN (no validation truth) keeps the tagger's
            continue
        if all(objective(refined_scores, half) > objective(tagger_scores, half) + 1e-12
               for half in halves):
            kept.append(head.name)
    return tuple(kept)


# ---------------------------------------------------------------------------------------------
# Inference.


def refine_scores(refiner: Refiner, embeddings: np.ndarray,
                  scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Refined scores per head (softmax rows sum to 1, every score in [0, 1]); deterministic."""
    emb, s = _check_inputs(embeddings, scores, refiner.space, "refine_scores")
    if emb.shape[1] != refiner.embedding_dim:
        raise ValueError(f"refine_scores: embeddings have width {emb.shape[1]}, the refiner "
                         f"was trained on width {refiner.embedding_dim}")
    refined = split_heads(_refine_matrix(refiner.generator, refiner.config, emb, s),
                          refiner.space)
    if refiner.refined_heads is not None:
        for name in refined:
            if name not in refiner.refined_heads:
                refined[name] = np.asarray(scores[name], refined[name].dtype)
    return refined


def decide(refiner: Refiner, refined: Mapping[str, np.ndarray], repaired: bool
           ) -> dict[str, np.ndarray]:
    """0/1 per head from refined scores: the refined thresholds, then (if ``repaired``) the
    consistency repair."""
    decisions = apply_thresholds(refined, refiner.thresholds, refiner.space)
    if repaired:
        decisions = repair(decisions, refined, refiner.space, refiner.compatibility)
    return decisions


def refine_decisions(refiner: Refiner, embeddings: np.ndarray,
                     scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """0/1 per head: refined scores through the refined thresholds, then (if
    ``config.repair``) the consistency repair."""
    return decide(refiner, refine_scores(refiner, embeddings, scores), refiner.config.repair)


# ---------------------------------------------------------------------------------------------
# Ablation and gate.


@dataclass
class Ablation:
    """Test-split metrics of each variant: ``rows[variant][metric]``.

    Variants: ``tagger`` (its own thresholds), ``tagger+repair`` (the tagger's decisions with
    the consistency repair alone), ``refiner-no-repair`` (refined scores and thresholds, no
    repair) and ``tagger+refiner`` (the refiner as configured, the one the gate judges).
    """

    rows: dict[str, dict[str, float]]
    n_test: int = 0
    # test products whose served tags or scores differ between tagger+refiner and the tagger,
    # and those whose tags differ (None: not measured)
    n_changed: int | None = None
    n_tags_changed: int | None = None
    # tagger+refiner - tagger on micro-F1, with its paired bootstrap interval (None: not
    # measured)
    difference: Difference | None = None

    def table(self) -> pl.DataFrame:
        """One row per variant, the metrics as columns (``ABLATION_METRICS`` first)."""
        return pl.DataFrame([{"variant": name, **{m: row.get(m, float("nan"))
                                                  for m in ABLATION_METRICS}}
                             for name, row in self.rows.items()])

    def delta(self, metric: str) -> float:
        """``tagger+refiner`` minus ``tagger`` for one metric."""
        for variant in ("tagger", "tagger+refiner"):
            if variant not in self.rows or metric not in self.rows[variant]:
                raise KeyError(f"ablation has no {metric!r} for variant {variant!r}")
        return float(self.rows["tagger+refiner"][metric] - self.rows["tagger"][metric])


def _variant(truth: Mapping[str, np.ndarray], decisions: Mapping[str, np.ndarray],
             scores: Mapping[str, np.ndarray], space: LabelSpace,
             compatibility: Compatibility) -> dict[str, float]:
    metrics = evaluate_heads(truth, decisions, scores, space)["all"]
    row = {m: float(metrics[m]) for m in ("micro_f1", "macro_f1", "samples_f1", "p_at_5",
                                          "ndcg_at_5", "micro_precision", "micro_recall")}
    row.update(tag_set_stats(decisions, space, compatibility))
    return row


def ablate(refiner: Refiner, tagger_thresholds: dict[str, np.ndarray], embeddings: np.ndarray,
           scores: dict[str, np.ndarray], targets: dict[str, np.ndarray]) -> Ablation:
    """Compare the tagger with tagger+refiner (and each part alone) on the TEST split.

    Args:
        refiner: The trained refiner.
        tagger_thresholds: The tagger's own (validation-tuned) thresholds.
        embeddings: Tagger embeddings of the test products.
        scores: The tagger's test scores per head.
        targets: Test targets per head.
    """
    space, compat = refiner.space, refiner.compatibility
    tagger_dec = apply_thresholds(scores, tagger_thresholds, space)
    refined = refine_scores(refiner, embeddings, scores)
    raw = decide(refiner, refined, repaired=False)
    served = decide(refiner, refined, refiner.config.repair)
    rows = {
        "tagger": _variant(targets, tagger_dec, scores, space, compat),
        "tagger+repair": _variant(targets, repair(tagger_dec, scores, space, compat), scores,
                                  space, compat),
        "refiner-no-repair": _variant(targets, raw, refined, space, compat),
        "tagger+refiner": _variant(targets, served, refined, space, compat),
    }
    n = len(np.asarray(embeddings))
    tags_changed, changed = np.zeros(n, bool), np.zeros(n, bool)
    for head in space.heads:
        tags_changed |= (np.asarray(served[head.name])
                         != np.asarray(tagger_dec[head.name])).any(axis=1)
        changed |= (np.asarray(refined[head.name]) != np.asarray(scores[head.name])).any(axis=1)
    difference = paired_difference(product_counts(targets, served, space),
                                   product_counts(targets, tagger_dec, space), "micro_f1")
    return Ablation(rows=rows, n_test=n, n_changed=int((changed | tags_changed).sum()),
                    n_tags_changed=int(tags_changed.sum()), difference=difference)


def refiner_gate(ablation: Ablation, tolerance: float = GATE_TOLERANCE, metric: str = "micro_f1"
                 ) -> tuple[bool, str]:
    """Apply the refiner only if it lowers ``metric`` by at most ``tolerance`` on the test split,
    and changes something: a refiner that leaves every test product's tags and scores as the
    tagger gave them (no head refined, nothing for the consistency repair to remove) is not
    applied, since serving it would cost a pass for nothing. The reason quotes the delta's
    paired bootstrap interval where the ablation measured it for ``metric``; it does not
    change the decision.

    Returns:
        (apply?, the reason with both numbers).
    """
    if tolerance < 0:
        raise ValueError(f"refiner_gate tolerance must not be negative, got {tolerance}")
    if ablation.n_changed == 0:
        return False, (f"the refiner changes the tags and scores of none of the "
                       f"{ablation.n_test} test products: nothing to apply, the tagger's tags "
                       "are served")
    base = float(ablation.rows["tagger"][metric])
    refined = float(ablation.rows["tagger+refiner"][metric])
    if math.isnan(base) or math.isnan(refined):
        return False, (f"{metric} is undefined (tagger {base}, tagger+refiner {refined}): "
                       "the refiner is not applied")
    delta = refined - base
    ok = delta >= -tolerance
    verdict = "applied" if ok else "refused"
    changed = ("" if ablation.n_changed is None else
               f"; it changes the tags of {ablation.n_tags_changed} and the tags or scores of "
               f"{ablation.n_changed} of {ablation.n_test} test products")
    if ablation.difference is not None and ablation.difference.metric == metric:
        changed += f"; the delta's {ablation.difference.interval()}"
    return ok, (f"test {metric}: tagger+refiner {refined:.4f} vs tagger {base:.4f} "
                f"(delta {delta:+.4f}, tolerance {tolerance:.4f}{changed}): refiner {verdict}")


# ---------------------------------------------------------------------------------------------
# Files.


def save_refiner(refiner: Refiner, directory: Path) -> Path:
    """Write the refiner's files into ``directory`` (created if needed; files replaced).

    Files: ``generator.keras``, ``critic.keras`` (if any; inference does not need it),
    ``label_space.json``, ``thresholds.json``, ``refiner_config.json``,
    ``compatibility.json``, ``history.json``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    refiner.generator.save(directory / GENERATOR_FILE)
    if refiner.critic is not None:
        refiner.critic.save(directory / CRITIC_FILE)
    (directory / SPACE_FILE).write_text(refiner.space.to_json(), encoding="utf-8")
    thresholds = {k: [float(t) for t in np.asarray(v).ravel()]
                  for k, v in refiner.thresholds.items()}
    files = {THRESHOLDS_FILE: thresholds, CONFIG_FILE: refiner.config.to_dict(),
             COMPATIBILITY_FILE: refiner.compatibility.to_dict(), HISTORY_FILE: refiner.history}
    if refiner.refined_heads is not None:
        files[HEADS_FILE] = list(refiner.refined_heads)
    else:
        (directory / HEADS_FILE).unlink(missing_ok=True)
    for name, data in files.items():
        (directory / name).write_text(json.dumps(data, ensure_ascii=False, indent=1),
                                      encoding="utf-8")
    return directory


def load_refiner(directory: Path | str) -> Refiner:
    """Read a refiner written by ``save_refiner`` (models loaded with ``compile=False``).

    Raises:
        FileNotFoundError: the folder or one of its files is missing (both are named).
        ValueError: a file is unreadable or does not fit the label space.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"refiner folder {directory} does not exist")
    missing = [name for name in REFINER_FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"refiner folder {directory} lacks {', '.join(missing)}")

    def read(name: str) -> Any:
        return read_json(directory / name, what="refiner file")

    space = LabelSpace.from_json((directory / SPACE_FILE).read_text(encoding="utf-8"))
    try:
        config = RefinerConfig.from_dict(read(CONFIG_FILE))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"refiner file {directory / CONFIG_FILE}: {exc}") from exc
    thresholds = {str(k): np.asarray(v, np.float64)
                  for k, v in read(THRESHOLDS_FILE).items()}
    if set(thresholds) != set(space.head_names):
        raise ValueError(f"refiner file {directory / THRESHOLDS_FILE} has thresholds for heads "
                         f"{sorted(thresholds)}, the label space has {sorted(space.head_names)}")
    compatibility = Compatibility.from_dict(read(COMPATIBILITY_FILE))
    history = (read(HISTORY_FILE) if (directory / HISTORY_FILE).is_file()
               else {})
    refined_heads = None
    if (directory / HEADS_FILE).is_file():
        refined_heads = tuple(str(h) for h in read(HEADS_FILE))
        unknown = sorted(set(refined_heads) - set(space.head_names))
        if unknown:
            raise ValueError(f"refiner file {directory / HEADS_FILE} names head(s) {unknown} "
                             f"the label space lacks ({sorted(space.head_names)})")
    generator = keras.models.load_model(directory / GENERATOR_FILE, compile=False)
    critic = (keras.models.load_model(directory / CRITIC_FILE, compile=False)
              if (directory / CRITIC_FILE).is_file() else None)
    return Refiner(generator=generator, critic=critic, space=space, config=config,
                   thresholds=thresholds, compatibility=compatibility, history=history,
                   refined_heads=refined_heads)


__all__ = [
    "Ablation",
    "Compatibility",
    "Refiner",
    "RefinerConfig",
    "ablate",
    "build_compatibility",
    "decide",
    "load_refiner",
    "refine_decisions",
    "refine_scores",
    "refiner_gate",
    "repair",
    "save_refiner",
    "select_refined_heads",
    "tag_set_stats",
    "train_refiner",
]
