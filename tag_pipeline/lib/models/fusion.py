"""Late fusion of the tagger's backends, per head, tuned on the validation split.

The fused tagger combines two backends that see the same product: the CNN + BiLSTM
(``tagger``; text tokens and the photo) and the calibrated linear n-gram model (``baseline``;
TF-IDF of the text and the feature words). Their scores per head are combined as in Annif's
ensembles and the late-fusion winners of the SIGIR eCom 2020 multimodal challenge:

- a softmax head: a weighted geometric mean in log space, with a logit adjustment against the
  head's class prior (Menon et al. 2021) for the long tail::

      z = w * log p_cnn + (1 - w) * log p_linear - tau * log prior;   p = softmax(z)

- a sigmoid head: a weighted mean ``w * p_cnn + (1 - w) * p_linear``; the per-tag thresholds
  are tuned afterwards on the fused scores (``scoring.tune_thresholds``).

``tune_fusion`` picks ``w`` from a grid that includes 0 and 1 (each backend alone) and ``tau``
from a grid that includes 0, by the head's validation objective: for a softmax head
``accuracy + macro_weight * macro-F1`` over its labeled rows, for a sigmoid head micro-F1 after
tuning thresholds. So on validation the fused head is never worse than the better backend by
that objective: by construction, and tested. A setting other than the linear backend alone is
only kept when it beats it by more than one validation product's worth (``1 / n`` labeled
rows) and when the choice holds out of sample: chosen on either half of the validation rows,
it beats the linear backend alone on the other half. On a small validation split a smaller or
unstable gain is noise, and the linear backend is the
in-run baseline's family, so a noisy departure from it is what makes a fused tagger lose to
the baseline on the test split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tag_pipeline.lib.models.labels import SOFTMAX, LabelSpace
from tag_pipeline.lib.models.scoring import THRESHOLD_GRID, _best_thresholds

CNN = "cnn_bilstm"
LINEAR = "linear"
BACKENDS = (CNN, LINEAR)
WEIGHT_GRID = np.round(np.arange(0.0, 1.0001, 0.1), 2)
PRIOR_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
_EPS = 1e-7


@dataclass(frozen=True)
class HeadFusion:
    """How one head is fused: the CNN + BiLSTM's weight, the prior adjustment, and the
    validation objective of the fused head and of each backend alone."""

    weight: float
    prior_power: float
    objective: float
    backend_objectives: dict[str, float]


@dataclass(frozen=True)
class Fusion:
    """Per-head fusion settings (``tune_fusion``) and the class priors they adjust for."""

    heads: dict[str, HeadFusion]
    log_prior: dict[str, np.ndarray]
    macro_weight: float

    def to_dict(self) -> dict:
        """A JSON-ready dict (see ``from_dict``)."""
        return {"macro_weight": self.macro_weight,
                "heads": {name: {"weight": h.weight, "prior_power": h.prior_power,
                                 "objective": h.objective,
                                 "backend_objectives": h.backend_objectives}
                          for name, h in self.heads.items()},
                "log_prior": {name: [float(v) for v in p] for name, p in self.log_prior.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> Fusion:
        """Rebuild a fusion written by ``to_dict``."""
        heads = {name: HeadFusion(weight=float(h["weight"]), prior_power=float(h["prior_power"]),
                                  objective=float(h["objective"]),
                                  backend_objectives={k: float(v) for k, v in
                                                      h["backend_objectives"].items()})
                 for name, h in data["heads"].items()}
        return cls(heads=heads, macro_weight=float(data["macro_weight"]),
                   log_prior={k: np.asarray(v, np.float64) for k, v in data["log_prior"].items()})

    def check(self, space: LabelSpace, where: str) -> None:
        """Raise ValueError (naming ``where``) when the fusion does not fit the label space."""
        if set(self.heads) != set(space.head_names):
            raise ValueError(f"{where}: fusion is for heads {sorted(self.heads)}, the label "
                             f"space has {sorted(space.head_names)}")
        for head in space.heads:
            if head.kind == SOFTMAX and np.shape(self.log_prior.get(head.name)) != (head.size,):
                raise ValueError(f"{where}: fusion has no class prior of size {head.size} for "
                                 f"softmax head {head.name!r}")


def class_log_prior(space: LabelSpace) -> dict[str, np.ndarray]:
    """log of each softmax head's class frequencies among labeled training products."""
    out = {}
    for head in space.heads:
        if head.kind == SOFTMAX:
            support = np.array([c.support for c in head.classes], np.float64)
            out[head.name] = np.log(support / support.sum())
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def combine_head(kind: str, cnn: np.ndarray, linear: np.ndarray, weight: float,
                 prior_power: float = 0.0, log_prior: np.ndarray | None = None) -> np.ndarray:
    """Fused scores of one head from its two backends' scores (see the module docstring)."""
    cnn = np.asarray(cnn, np.float64)
    linear = np.asarray(linear, np.float64)
    if kind != SOFTMAX:
        return (weight * cnn + (1.0 - weight) * linear).astype(np.float32)
    z = weight * np.log(cnn + _EPS) + (1.0 - weight) * np.log(linear + _EPS)
    if prior_power and log_prior is not None:
        z = z - prior_power * log_prior
    return _softmax(z).astype(np.float32)


def fuse(fusion: Fusion, backend_scores: Mapping[str, Mapping[str, np.ndarray]],
         space: LabelSpace) -> dict[str, np.ndarray]:
    """Fused scores per head from ``{backend: {head: scores}}`` (both backends required)."""
    missing = [b for b in BACKENDS if b not in backend_scores]
    if missing:
        raise ValueError(f"fusion needs the scores of backend(s) {missing}; "
                         f"got {sorted(backend_scores)}")
    out = {}
    for head in space.heads:
        h = fusion.heads[head.name]
        out[head.name] = combine_head(head.kind, backend_scores[CNN][head.name],
                                      backend_scores[LINEAR][head.name], h.weight,
                                      h.prior_power, fusion.log_prior.get(head.name))
    return out


def softmax_objective(scores: np.ndarray, truth: np.ndarray, macro_weight: float) -> float:
    """accuracy + macro_weight * macro-F1 over the labeled rows of a softmax head."""
    truth = np.asarray(truth) > 0
    known = truth.any(axis=1)
    if not known.any():
        return float("nan")
    true_cls = truth[known].argmax(axis=1)
    pred_cls = np.asarray(scores)[known].argmax(axis=1)
    accuracy = float((true_cls == pred_cls).mean())
    size = truth.shape[1]
    tp = np.bincount(true_cls[true_cls == pred_cls], minlength=size)
    n_true = np.bincount(true_cls, minlength=size)
    n_pred = np.bincount(pred_cls, minlength=size)
    active = (n_true + n_pred) > 0
    f1 = np.divide(2.0 * tp, n_true + n_pred, out=np.zeros(size), where=(n_true + n_pred) > 0)
    return accuracy + macro_weight * float(f1[active].mean())


def sigmoid_objective(scores: np.ndarray, truth: np.ndarray) -> float:
    """Micro-F1 of a sigmoid head after tuning its per-tag thresholds on these rows."""
    truth = np.asarray(truth) > 0
    scores = np.asarray(scores)
    thr = _best_thresholds(scores, truth, THRESHOLD_GRID)
    pred = scores >= thr
    tp = float((pred & truth).sum())
    denom = float(pred.sum() + truth.sum())
    return 2.0 * tp / denom if denom else float("nan")


def tune_fusion(backend_scores: Mapping[str, Mapping[str, np.ndarray]],
                targets: Mapping[str, np.ndarray], space: LabelSpace,
                macro_weight: float = 0.5, weights: np.ndarray = WEIGHT_GRID,
                prior_powers: tuple[float, ...] = PRIOR_GRID) -> Fusion:
    """Pick each head's backend weight and prior adjustment on VALIDATION scores.

    Args:
        backend_scores: ``{backend: {head: validation scores}}`` for both backends.
        targets: Validation targets per head (``encode_labels``).
        space: The label space.
        macro_weight: Weight of macro-F1 next to accuracy in a softmax head's objective.
        weights: Candidate weights of the CNN + BiLSTM (0 and 1 must be among them).
        prior_powers: Candidate logit-adjustment strengths (0 must be among them).
    """
    if not {0.0, 1.0} <= {float(w) for w in weights} or 0.0 not in prior_powers:
        raise ValueError("tune_fusion: the weight grid must hold 0 and 1 and the prior grid 0, "
                         "so each backend alone is a candidate")
    log_prior = class_log_prior(space)
    heads = {}
    for head in space.heads:
        cnn, lin = backend_scores[CNN][head.name], backend_scores[LINEAR][head.name]
        y = np.asarray(targets[head.name])
        taus = prior_powers if head.kind == SOFTMAX else (0.0,)

        def objective(rows: np.ndarray, w: float, tau: float, head=head, cnn=cnn, lin=lin,
                      y=y) -> float:
            fused = combine_head(head.kind, cnn[rows], lin[rows], w, tau,
                                 log_prior.get(head.name))
            return (softmax_objective(fused, y[rows], macro_weight) if head.kind == SOFTMAX
                    else sigmoid_objective(fused, y[rows]))

        def best_on(rows: np.ndarray, objective=objective, y=y, taus=taus
                    ) -> tuple[float, float, float, float]:
            """(objective, weight, tau, linear-alone objective) of the best setting on rows,
            the linear backend alone unless a setting beats it by one product's worth."""
            best = (-np.inf, 0.0, 0.0)
            for w in weights:
                for tau in taus:
                    value = objective(rows, float(w), float(tau))
                    # strictly better only: ties keep the earlier (simpler) setting
                    if value == value and value > best[0] + 1e-12:
                        best = (value, float(w), float(tau))
            linear = objective(rows, 0.0, 0.0)
            n_known = int((y[rows] > 0).any(axis=1).sum())
            if linear == linear and best[0] - linear < 1.0 / max(n_known, 1):
                best = (linear, 0.0, 0.0)
            return (*best, linear)

        every = np.arange(len(y))
        value, weight, tau, linear = best_on(every)
        alone = {}
        if linear == linear:
            alone = {LINEAR: linear, CNN: objective(every, 1.0, 0.0)}
        if not np.isfinite(value):  # no validation truth: the linear backend alone
            value, weight, tau = float("nan"), 0.0, 0.0
        elif (weight, tau) != (0.0, 0.0):
            # Cross-check the choice on the two halves of the validation split: a setting
            # chosen on one half must beat the linear backend alone on the other half, both
            # ways round; otherwise the gain is the noise of a small split.
            halves = (every[0::2], every[1::2])
            for pick, check in (halves, halves[::-1]):
                _, w_h, tau_h, _ = best_on(pick)
                if not objective(check, w_h, tau_h) > objective(check, 0.0, 0.0) + 1e-12:
                    value, weight, tau = linear, 0.0, 0.0
                    break
        heads[head.name] = HeadFusion(weight=weight, prior_power=tau, objective=float(value),
                                      backend_objectives=alone)
    return Fusion(heads=heads, log_prior=log_prior, macro_weight=macro_weight)
