"""What a training run records in MLflow: flat metric names, the curve plot, the tables."""

from __future__ import annotations

import re
from pathlib import Path

from tag_pipeline.lib.models.training import Evaluation

_UNSAFE = re.compile(r"[^\w.\-/ ]")
HEADLINE = ("accuracy", "micro_f1", "macro_f1", "samples_f1", "micro_precision",
            "micro_recall", "p_at_1", "p_at_3", "p_at_5", "ndcg_at_5")


def metric_key(*parts: str) -> str:
    """A metric name MLflow and Dagster both accept (``type:scene`` -> ``type_scene``)."""
    return ".".join(_UNSAFE.sub("_", p) for p in parts)


def flat_metrics(evaluation: Evaluation, heads: bool = False) -> dict[str, float]:
    """``test.<model>.<subset>.<scope>.<metric>`` for every headline metric (NaN dropped)."""
    out: dict[str, float] = {}
    for model, subsets in evaluation.results.items():
        for subset, scopes in subsets.items():
            for scope, metrics in scopes.items():
                if scope.startswith("head:") and not heads:
                    continue
                for name in HEADLINE:
                    value = metrics.get(name)
                    if value is not None and value == value:
                        out[metric_key("test", model, subset, scope, name)] = float(value)
    return out


def ensure_experiment(client: object, name: str, artifact_location: str | None) -> str:
    """The experiment id, creating it with an explicit artifact location when new."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location)


def png_markdown(path: Path, alt: str) -> str:
    """A PNG inlined as a Markdown image (a base64 data URI), which the Dagster UI renders in
    the asset's metadata; keep the figure small (these plots are 20 to 60 kB)."""
    import base64

    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{data})"


def epoch_table(history: dict[str, list[float]], seconds: list[float]) -> str:
    """Per-epoch losses and times as a Markdown table (epoch 1 first)."""
    keys = [k for k in ("loss", "val_loss") if k in history]
    lines = ["| epoch | " + " | ".join(keys) + " | seconds |",
             "| --- | " + " | ".join("---" for _ in keys) + " | --- |"]
    for i, secs in enumerate(seconds):
        values = " | ".join(f"{history[k][i]:.4f}" if i < len(history[k]) else ""
                            for k in keys)
        lines.append(f"| {i + 1} | {values} | {secs:.1f} |")
    return "\n".join(lines)


def plot_training_curve(history: dict[str, list[float]], path: Path) -> Path:
    """Training and validation loss per epoch, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for key in ("loss", "val_loss"):
        if key in history:
            ax.plot(range(1, len(history[key]) + 1), history[key], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("tagger training curve")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_model_vs_baseline(evaluation: Evaluation, path: Path, metric: str = "micro_f1") -> Path:
    """Grouped bars: tagger vs baseline per tag type and overall, all products and images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    scopes = ["all"] + sorted(s for s in evaluation.results["tagger"]["all"]
                              if s.startswith("type:"))
    subsets = [s for s in ("all", "images") if s in evaluation.results["tagger"]]
    fig, axes = plt.subplots(1, len(subsets), figsize=(5 * len(subsets), 3.8), dpi=100,
                             sharey=True, squeeze=False)
    axes = axes[0]
    x = np.arange(len(scopes))
    for ax, subset in zip(axes, subsets, strict=True):
        for offset, model in ((-0.2, "tagger"), (0.2, "baseline")):
            values = [evaluation.results[model][subset][s].get(metric, float("nan"))
                      for s in scopes]
            ax.bar(x + offset, values, width=0.4, label=model)
        ax.set_xticks(x, [s.replace("type:", "") for s in scopes], rotation=20)
        ax.set_title(f"{metric} on the test split ({subset} products)")
        ax.set_ylim(0, 1)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
