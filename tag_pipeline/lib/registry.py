"""The MLflow model registry as the single source of truth for which model tags the catalog.

Every trained model becomes a version of a registered model with alias ``challenger``. The
gate promotes it to ``champion`` only if it beats the strong baseline trained in the same run
on the same split (a model that loses to it is never promoted, not even when there is no
champion yet) and the current champion on the same test split, by the primary metric. An
engineer may overrule the gate (``promote``) or go back (``rollback``). Each alias move is
written on the version as tags: who, why, when and which version it replaced, so the history
can be read from MLflow alone and a rollback knows where to go.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

if TYPE_CHECKING:
    from tag_pipeline.lib.models.comparison import Difference

CHAMPION = "champion"
CHALLENGER = "challenger"
_HISTORY_TAG = "alias_history"


class RegistryError(RuntimeError):
    """A registry operation cannot be done (unknown model, version or alias)."""


@dataclass(frozen=True)
class PromotionDecision:
    """The gate's verdict for one candidate version."""

    promote: bool
    candidate_version: str
    candidate_score: float
    champion_version: str | None
    champion_score: float | None
    metric: str
    reason: str
    baseline_score: float | None = None
    # candidate - baseline on the same test products, with its paired bootstrap interval
    baseline_difference: Difference | None = None


def ensure_registered_model(client: MlflowClient, name: str) -> None:
    """Create the registered model if it does not exist yet."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version an alias points to, or None when the alias is not set."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _model_id_of(mv) -> str | None:
    """The id of the LoggedModel a model version was registered from (``models:/m-...``),
    if any."""
    if getattr(mv, "model_id", None):
        return str(mv.model_id)
    source = str(mv.source or "")
    if source.startswith("models:/m-"):
        return source.removeprefix("models:/").split("/", 1)[0]
    return None


def log_test_metrics(client: MlflowClient, name: str, version: str,
                     metrics: dict[str, float], test_ids: list[str],
                     warehouse: str) -> str | None:
    """Log the test metrics on the version's run and on its LoggedModel, with the test split
    as the data set they were measured on (an input of the run, named ``test_split``; its
    source names the warehouse and table, its digest is that of the product ids). Returns the
    LoggedModel id (None: the version has none, and the metrics go on the run alone)."""
    import mlflow
    import pandas as pd
    from mlflow.data.code_dataset_source import CodeDatasetSource

    source = CodeDatasetSource({"warehouse": warehouse, "table": "product_features",
                                "split": "test"})
    dataset = mlflow.data.from_pandas(pd.DataFrame({"product_id": test_ids}),
                                      name="test_split", source=source)
    mv = client.get_model_version(name, version)
    model_id = _model_id_of(mv)
    with mlflow.start_run(run_id=mv.run_id):
        mlflow.log_input(dataset, context="test")
        mlflow.log_metrics(metrics, model_id=model_id, dataset=dataset)
    return model_id


def logged_model_metrics(client: MlflowClient, model_id: str) -> dict[str, float]:
    """The latest value of every metric on a LoggedModel."""
    latest: dict[str, object] = {}
    for m in client.get_logged_model(model_id).metrics or []:
        if m.key not in latest or (m.timestamp, m.step) >= (latest[m.key].timestamp,
                                                             latest[m.key].step):
            latest[m.key] = m
    return {key: float(m.value) for key, m in latest.items()}


def version_metric(client: MlflowClient, name: str, version: str, metric: str) -> float | None:
    """A test metric recorded on a version (tag ``test.<metric>``), if any."""
    tags = client.get_model_version(name, version).tags
    value = tags.get(f"test.{metric}")
    return float(value) if value is not None else None


def _history(client: MlflowClient, name: str, version: str) -> list[dict]:
    raw = client.get_model_version(name, version).tags.get(_HISTORY_TAG)
    return json.loads(raw) if raw else []


def move_alias(client: MlflowClient, name: str, alias: str, version: str, *, actor: str,
               reason: str) -> str | None:
    """Point ``alias`` at ``version`` and record who, why and what it replaced.

    Returns the version the alias pointed to before (None if it was not set).
    """
    try:
        client.get_model_version(name, version)
    except MlflowException as exc:
        raise RegistryError(f"registered model {name!r} has no version {version!r}") from exc
    previous = alias_version(client, name, alias)
    client.set_registered_model_alias(name, alias, version)
    event = {"alias": alias, "previous": previous, "actor": actor, "reason": reason,
             "at": datetime.now(UTC).isoformat(timespec="seconds")}
    history = [*_history(client, name, version), event]
    client.set_model_version_tag(name, version, _HISTORY_TAG, json.dumps(history))
    if previous != version:  # re-pointing at itself keeps the version it really replaced
        client.set_model_version_tag(name, version, f"{alias}.previous_version",
                                     previous or "")
    client.set_model_version_tag(name, version, f"{alias}.set_by", actor)
    client.set_model_version_tag(name, version, f"{alias}.reason", reason)
    return previous


def decide_promotion(client: MlflowClient, name: str, candidate_version: str,
                     candidate_score: float, metric: str,
                     champion_score: float | None = None,
                     min_improvement: float = 0.0,
                     baseline_score: float | None = None,
                     baseline_difference: Difference | None = None) -> PromotionDecision:
    """Should the candidate replace the champion?

    ``baseline_score`` is the in-run baseline on the same test split: a candidate that does not
    beat it is refused whatever the champion. ``champion_score`` must be the champion measured
    on the same test split as the candidate; when omitted the score recorded on the champion
    version is used. ``baseline_difference`` (candidate - baseline, with the paired bootstrap
    interval of ``comparison.paired_difference``) does not change the decision; the reason
    quotes it, so whoever reads it sees whether the margin is more than the split's luck.
    """
    champion = alias_version(client, name, CHAMPION)
    interval = baseline_difference.sentence() if baseline_difference is not None else None
    if baseline_score is not None and not candidate_score > baseline_score:
        return PromotionDecision(
            False, candidate_version, candidate_score, champion, champion_score, metric,
            f"{metric} {candidate_score:.4f} does not beat the baseline {baseline_score:.4f} "
            f"(TF-IDF + LinearSVC, same split{f'; {interval}' if interval else ''})",
            baseline_score, baseline_difference)
    if champion is None:
        reason = "no champion yet"
        if baseline_score is not None:
            reason += f"; beats the baseline {baseline_score:.4f}"
            reason += f" ({interval})" if interval else ""
        return PromotionDecision(True, candidate_version, candidate_score, None, None, metric,
                                 reason, baseline_score, baseline_difference)
    if champion_score is None:
        champion_score = version_metric(client, name, champion, metric)
    if champion_score is None:
        return PromotionDecision(True, candidate_version, candidate_score, champion, None,
                                 metric, f"champion v{champion} has no recorded {metric}",
                                 baseline_score, baseline_difference)
    better = candidate_score > champion_score + min_improvement
    verdict = "beats" if better else "does not beat"
    return PromotionDecision(
        better, candidate_version, candidate_score, champion, champion_score, metric,
        f"{metric} {candidate_score:.4f} {verdict} champion v{champion} {champion_score:.4f}"
        + (f" by more than {min_improvement}" if min_improvement else ""),
        baseline_score, baseline_difference,
    )


def record_decision(client: MlflowClient, name: str, decision: PromotionDecision) -> None:
    """Write the gate's decision and both scores on the candidate version."""
    tags = {
        "gate.promoted": str(decision.promote).lower(),
        "gate.metric": decision.metric,
        "gate.candidate_score": f"{decision.candidate_score:.6f}",
        "gate.champion_version": decision.champion_version or "",
        "gate.champion_score": "" if decision.champion_score is None
        else f"{decision.champion_score:.6f}",
        "gate.reason": decision.reason,
        "gate.baseline_score": "" if decision.baseline_score is None
        else f"{decision.baseline_score:.6f}",
    }
    difference = decision.baseline_difference
    if difference is not None:
        tags["gate.baseline_difference"] = f"{difference.difference:+.6f}"
        tags["gate.baseline_interval"] = f"{difference.low:+.6f} to {difference.high:+.6f}"
        tags["gate.baseline_interval_method"] = (
            f"paired bootstrap of {difference.metric}, {difference.level:.0%}, "
            f"{difference.resamples} resamples of the {difference.products} test products")
    for key, value in tags.items():
        client.set_model_version_tag(name, decision.candidate_version, key, value)


def rollback(client: MlflowClient, name: str, *, actor: str, reason: str) -> tuple[str, str]:
    """Point ``champion`` back at the version it replaced; returns (from, to) versions."""
    current = alias_version(client, name, CHAMPION)
    if current is None:
        raise RegistryError(f"registered model {name!r} has no champion to roll back")
    previous = client.get_model_version(name, current).tags.get(f"{CHAMPION}.previous_version")
    if not previous:
        raise RegistryError(
            f"registered model {name!r}: champion v{current} replaced no earlier version"
        )
    move_alias(client, name, CHAMPION, previous, actor=actor,
               reason=f"rollback from v{current}: {reason}")
    return current, previous
