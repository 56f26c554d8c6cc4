"""The GAN refiner's settings: a plain dataclass (no TensorFlow), so the Dagster config that
exposes them reads its defaults from here without loading the networks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

# How much test micro-F1 the refiner may cost and still be applied: none, so the served tags are
# never less accurate than the tagger's own (measured on myntra, a refiner that gained 0.010
# macro-F1 cost 0.0013 micro-F1 and the accuracy of four facets).
GATE_TOLERANCE = 0.0


@dataclass
class RefinerConfig:
    """Hyper-parameters of the refiner (all logged with the model).

    Attributes:
        noise_dim: Size of the generator's noise input.
        hidden_dim: Units of the two hidden layers of the generator and of the critic.
        epochs: Passes over the training split.
        batch_size: Products per step.
        learning_rate: Adam learning rate of both networks.
        critic_steps: Critic updates per generator update.
        gp_weight: Weight of the WGAN-GP gradient penalty.
        supervised_weight: Weight of the tagger's cross-entropy in the generator's loss.
        noise_samples: Fixed noise vectors averaged over at inference.
        seed: Seed of weights, shuffling, training noise and inference noise.
        residual_scale: Largest residual added to a logit (the tanh bound).
        adversarial_weight: Weight of the adversarial term in the generator's loss.
        min_expected: Expected co-occurrences (under independence) from which a never-seen
            pair of tags counts as incompatible.
        repair: Whether decoding drops the lower-scored tag of an incompatible pair.
        restore_best: Keep the weights of the epoch with the lowest validation
            supervised loss (else those of the last epoch).
        select_heads: Refine only the heads where the refined validation scores beat the
            tagger's (``refiner.select_refined_heads``); the others keep the tagger's scores
            and thresholds. Needs the tagger's thresholds (``train_refiner``).
        head_macro_weight: Weight of macro-F1 next to accuracy in a single-valued head's
            objective for that choice (as in the fusion, ``TaggerConfig.fusion_macro_weight``).
    """

    noise_dim: int = 16
    hidden_dim: int = 128
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    critic_steps: int = 2
    gp_weight: float = 10.0
    supervised_weight: float = 5.0
    noise_samples: int = 8
    seed: int = 42
    residual_scale: float = 3.0
    adversarial_weight: float = 1.0
    min_expected: float = 5.0
    repair: bool = True
    restore_best: bool = True
    select_heads: bool = True
    head_macro_weight: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        """Plain values, e.g. for MLflow params."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RefinerConfig:
        """Rebuild from ``to_dict`` output; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown RefinerConfig setting(s) {unknown}; "
                             f"known are {sorted(known)}")
        return cls(**dict(data))

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        positive = ("noise_dim", "hidden_dim", "epochs", "batch_size", "critic_steps",
                    "noise_samples")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"RefinerConfig.{name} must be at least 1, "
                                 f"got {getattr(self, name)}")
        for name in ("learning_rate", "residual_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RefinerConfig.{name} must be positive, "
                                 f"got {getattr(self, name)}")
        for name in ("gp_weight", "supervised_weight", "adversarial_weight", "min_expected",
                     "head_macro_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"RefinerConfig.{name} must not be negative, "
                                 f"got {getattr(self, name)}")
