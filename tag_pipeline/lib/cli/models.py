"""Which registered tagger (and refiner) a command uses, and tagging products with them.

A model is named by an alias (``champion``, ``challenger``) or a version number. The refiner
is chosen the way ``product_tags`` chooses it (``registry_models.choose_refiner``): the
champion refiner, only if it was trained on the chosen tagger version and passed its gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tag_pipeline.lib.models.registry_models import choose_refiner, load_refiner, load_tagger
from tag_pipeline.lib.registry import RegistryError

if TYPE_CHECKING:
    from tag_pipeline.lib.models.bundle import TaggerBundle
    from tag_pipeline.lib.models.refiner import Refiner

# The columns of a tag row, as in the warehouse's model_tags table.
TAG_COLUMNS = {"product_id": pl.Utf8, "tag": pl.Utf8, "tag_type": pl.Utf8, "facet": pl.Utf8,
               "score": pl.Float64, "source": pl.Utf8, "explanation": pl.Utf8,
               "tagger_version": pl.Utf8, "refiner_version": pl.Utf8}


def resolve_version(client: MlflowClient, name: str, reference: str) -> str:
    """The version a reference names: a version number, or an alias of ``name``.

    Raises:
        RegistryError: the registered model, the version or the alias does not exist; the
            message lists what does.
    """
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        raise RegistryError(f"the registry has no model {name!r}: run model_job first") from exc
    aliases = dict(model.aliases or {})
    reference = reference.strip()
    if reference.isdigit():
        try:
            return str(client.get_model_version(name, reference).version)
        except MlflowException as exc:
            versions = sorted(int(v.version) for v in
                               client.search_model_versions(f"name = '{name}'"))
            raise RegistryError(f"model {name} has no version {reference!r} (versions: "
                                f"{', '.join(map(str, versions)) or 'none'})") from exc
    if reference not in aliases:
        raise RegistryError(f"model {name} has no alias {reference!r} (aliases: "
                            f"{', '.join(sorted(aliases)) or 'none'})")
    return str(aliases[reference])


@dataclass
class Models:
    """The loaded tagger, and the refiner applied on top of it (or None, with the reason)."""

    tagger_name: str
    tagger_version: str
    bundle: TaggerBundle
    refiner_name: str
    refiner_version: str | None
    refiner: Refiner | None
    refiner_reason: str

    def describe(self) -> str:
        """One line: which versions tag, e.g. for a report."""
        refiner = (f"{self.refiner_name} v{self.refiner_version}" if self.refiner_version
                   else "no refiner")
        return (f"{self.tagger_name} v{self.tagger_version}, {refiner} "
                f"({self.refiner_reason})")


def serving_model(client: MlflowClient, tagger_name: str, refiner_name: str,
                  reference: str = "champion") -> tuple[str, str]:
    """The MLflow model URI that answers as ``tag`` and ``product_tags`` do for the tagger
    ``reference`` names, and why: the refiner version that applies to it (its pyfunc holds the
    tagger it was trained on and refines its scores), else the tagger version itself."""
    version = resolve_version(client, tagger_name, reference)
    choice = choose_refiner(client, refiner_name, version)
    if choice.version is not None:
        return (f"models:/{refiner_name}/{choice.version}",
                f"tagger {tagger_name} v{version} refined by {choice.reason}")
    return (f"models:/{tagger_name}/{version}",
            f"tagger {tagger_name} v{version} alone: {choice.reason}")


def load_models(client: MlflowClient, tagger_name: str, refiner_name: str, reference: str,
                use_refiner: bool = True) -> Models:
    """Load the tagger version ``reference`` names and the refiner that applies to it.

    The ``mlflow`` module must point at the same tracking and registry URIs as ``client``.
    """
    version = resolve_version(client, tagger_name, reference)
    if use_refiner:
        choice = choose_refiner(client, refiner_name, version)
        refiner_version, reason = choice.version, choice.reason
    else:
        refiner_version, reason = None, "refiner turned off"
    bundle = load_tagger(tagger_name, version)
    refiner = load_refiner(refiner_name, refiner_version) if refiner_version else None
    return Models(tagger_name=tagger_name, tagger_version=version, bundle=bundle,
                  refiner_name=refiner_name, refiner_version=refiner_version, refiner=refiner,
                  refiner_reason=reason)


def tag_products(models: Models, products: pl.DataFrame, *, explain: bool = True,
                 explanation_words: int = 2, explanation_max_words: int = 16) -> pl.DataFrame:
    """Tags of a batch of products, as ``tag_catalog`` makes them for ``model_tags``.

    Args:
        models: The tagger and refiner (``load_models``).
        products: product_id, title; optional description and image_path (null: no image).
        explain: Whether to add the words that support each tag (word occlusion).
        explanation_words: Words kept per explanation.
        explanation_max_words: Words of a product tried by occlusion (title first).

    Returns:
        Columns ``TAG_COLUMNS``: one row per (product, tag), products in input order.
    """
    from tag_pipeline.lib.tags.tagging import tag_products as tag_batch

    return tag_batch(models.bundle, products, models.refiner,
                     tagger_version=models.tagger_version,
                     refiner_version=models.refiner_version, explain=explain,
                     explanation_words=explanation_words,
                     explanation_max_words=explanation_max_words)
