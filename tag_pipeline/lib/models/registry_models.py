"""Loading the tagger and the refiner from the MLflow model registry, by version or alias.

Downstream code never loads a model from a file path: it asks the registry which version an
alias points to and loads that version's logged pyfunc. The MLflow tracking and registry URIs
must be set (``mlflow.set_tracking_uri`` / ``set_registry_uri``) before these are called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlflow import MlflowClient

from tag_pipeline.lib.registry import CHAMPION, RegistryError, alias_version

if TYPE_CHECKING:
    from tag_pipeline.lib.models.bundle import TaggerBundle
    from tag_pipeline.lib.models.refiner import Refiner

# Version tags written on a refiner version (see defs/refiner).
TAGGER_VERSION_TAG = "tagger_version"
ABLATION_APPLY_TAG = "ablation.apply"
ABLATION_REASON_TAG = "ablation.reason"


def _python_model(name: str, version: str):
    import mlflow

    return mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()


def load_tagger(name: str, version: str) -> TaggerBundle:
    """The tagger bundle of a registered version."""
    return _python_model(name, version).bundle


def load_refiner(name: str, version: str) -> Refiner:
    """The refiner of a registered refiner version."""
    return _python_model(name, version).refiner


def champion_tagger_version(client: MlflowClient, name: str) -> str:
    """The version the tagger's champion alias points to; an error if there is none."""
    version = alias_version(client, name, CHAMPION)
    if version is None:
        raise RegistryError(f"registered model {name!r} has no {CHAMPION!r} alias: materialize "
                            "tag_model and tag_model_evaluation first, or run "
                            "promote_model_job")
    return version


@dataclass(frozen=True)
class RefinerChoice:
    """Whether tagging uses a refiner, which version, and why."""

    version: str | None
    reason: str


def choose_refiner(client: MlflowClient, refiner_name: str, tagger_version: str) -> RefinerChoice:
    """The champion refiner if it was trained on ``tagger_version`` and passed its gate.

    A refiner refines the scores of the tagger version it was trained on; with another tagger
    its inputs mean something else, so it is not used.
    """
    version = alias_version(client, refiner_name, CHAMPION)
    if version is None:
        return RefinerChoice(None, f"registered model {refiner_name!r} has no champion (or "
                                   "does not exist yet)")
    tags = client.get_model_version(refiner_name, version).tags
    trained_on = tags.get(TAGGER_VERSION_TAG)
    if trained_on != tagger_version:
        return RefinerChoice(None, f"champion refiner v{version} was trained on tagger "
                                   f"v{trained_on}, the champion tagger is v{tagger_version}")
    if tags.get(ABLATION_APPLY_TAG) != "true":
        return RefinerChoice(None, f"champion refiner v{version} did not pass its ablation gate: "
                                   f"{tags.get(ABLATION_REASON_TAG, 'no gate decision recorded')}")
    return RefinerChoice(version, f"champion refiner v{version}, trained on tagger "
                                  f"v{tagger_version}, passed its ablation gate")
