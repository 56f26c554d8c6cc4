"""The Dagster resources, built from the settings (``lib/settings.py``, the one place that
reads the environment)."""


from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from tag_pipeline.lib.catalog.profile import CatalogProfile, load_profile
from tag_pipeline.lib.events.retrain import DEFAULT_FEEDBACK_THRESHOLD
from tag_pipeline.lib.settings import (
    PSEUDONYM_KEY_ENV,
    REFINER_MODEL_NAME,
    REPO_ROOT,
    SQL_ROOT,
    TAGGER_MODEL_NAME,
    MlflowStore,
    Settings,
    project_home,
    read_pseudonym_key,
    read_settings,
)

__all__ = ["REPO_ROOT", "SQL_ROOT", "build_resources", "project_home", "sales_history_start"]


class WarehouseResource(DuckDBResource):
    """The DuckDB warehouse: a local file (its folder is created) or a ``md:`` MotherDuck path."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if not self.database.startswith(("md:", "motherduck:", ":memory:")):
            Path(self.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


class CatalogResource(dg.ConfigurableResource):
    """Which catalog profile to read, and the folders its ``root`` may refer to."""

    profile: str = "demo"
    landing_dir: str
    shared_data_dir: str

    def load_profile(self) -> CatalogProfile:
        """The parsed profile, with ``{landing}`` and ``{shared_data}`` filled in."""
        return load_profile(
            self.profile, {"landing": self.landing_dir, "shared_data": self.shared_data_dir}
        )


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking and registry: a local sqlite store by default, or a tracking server."""

    tracking_uri: str
    registry_uri: str | None = None
    experiment_name: str = "tag_pipeline"
    artifact_location: str | None = None
    registered_model_name: str = TAGGER_MODEL_NAME
    refiner_model_name: str = REFINER_MODEL_NAME
    ui_url: str | None = None

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        for uri in (self.tracking_uri, self.registry_uri or ""):
            if uri.startswith("sqlite:///"):
                Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

    def store(self) -> MlflowStore:
        """The plain store these settings name (what the command line uses too)."""
        return MlflowStore(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri,
                           registered_model_name=self.registered_model_name,
                           refiner_model_name=self.refiner_model_name)

    def activate(self) -> None:
        """Point the ``mlflow`` module (fluent API, ``models:/`` URIs) at this store."""
        self.store().activate()

    def client(self):  # -> mlflow.MlflowClient; mlflow is imported only where it is used
        return self.store().client()

    def run_url(self, experiment_id: str, run_id: str) -> str | None:
        """A link to the run in the MLflow UI, when one is configured."""
        base = self.ui_url or (self.tracking_uri if self.tracking_uri.startswith("http")
                               else None)
        return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}" if base else None

    def model_version_url(self, name: str, version: str) -> str | None:
        """A link to a registered model version in the MLflow UI, when one is configured."""
        base = self.ui_url or (self.tracking_uri if self.tracking_uri.startswith("http")
                               else None)
        return f"{base.rstrip('/')}/#/models/{name}/versions/{version}" if base else None


class ExportResource(dg.ConfigurableResource):
    """Where tables are exported for downstream teams (Parquet, partitioned by tag type)."""

    directory: str

    def path(self, name: str) -> Path:
        """The export folder of one table (its parent is created)."""
        folder = Path(self.directory).expanduser() / name
        folder.parent.mkdir(parents=True, exist_ok=True)
        return folder


class PseudonymResource(dg.ConfigurableResource):
    """The secret key that pseudonymises shoppers' user ids at ingest (never stored in the
    warehouse). From ``TAG_PIPELINE_PSEUDONYM_KEY``, else the key file ``tag-pipeline init``
    writes into the project home (``secrets/pseudonym.key``, readable by its owner only)."""

    # Only the variable's name is configuration: Dagster shows resource config in its UI.
    key_env: str = PSEUDONYM_KEY_ENV
    key_file: str | None = None

    def load(self) -> bytes:
        """The key as bytes; an error that names the setting when there is none."""
        return read_pseudonym_key(self.key_env,
                                  Path(self.key_file) if self.key_file else None)


class OperationsResource(dg.ConfigurableResource):
    """The operations log: a small DuckDB file apart from the warehouse (failed runs)."""

    database: str


class RetrainPolicyResource(dg.ConfigurableResource):
    """When accumulated feedback retrains the tagger before the weekly schedule: the number of
    feedback events loaded since the last training that starts ``retrain_job``."""

    feedback_threshold: int = DEFAULT_FEEDBACK_THRESHOLD


def sales_history_start() -> str:
    """The first day (YYYY-MM-DD) of ``sales_daily``'s partitions:
    ``TAG_PIPELINE_SALES_HISTORY_START``, default 2025-01-01."""
    return read_settings().sales_history_start


def build_resources(check_moved: bool = True, settings: Settings | None = None
                    ) -> dict[str, dg.ConfigurableResource]:
    """The resources for ``settings`` (default: the current environment's).

    Raises:
        HomeMovedError: the project home was copied or moved and not relocated yet (its
            stores would read the original's files; ``lib.home``), unless ``check_moved`` is
            False (``doctor`` and ``relocate``, which report or fix it).
    """
    settings = settings or read_settings()
    if check_moved:
        from tag_pipeline.lib.home import check_home

        check_home(settings.home)
    return {
        "duckdb": WarehouseResource(
            database=settings.duckdb_path,
            connection_config={"memory_limit": settings.duckdb_memory_limit,
                               "threads": settings.duckdb_threads},
        ),
        "mlflow": MlflowResource(
            tracking_uri=settings.tracking_uri,
            registry_uri=settings.registry_uri,
            experiment_name=settings.mlflow_experiment,
            artifact_location=settings.mlflow_artifacts,
            ui_url=settings.mlflow_ui_url,
        ),
        "pseudonyms": PseudonymResource(key_env=settings.pseudonym_key_env,
                                        key_file=str(settings.pseudonym_key_file)),
        "operations": OperationsResource(database=settings.operations_db),
        "retrain_policy": RetrainPolicyResource(
            feedback_threshold=settings.retrain_feedback_threshold),
        "exports": ExportResource(directory=settings.export_dir),
        "catalog": CatalogResource(
            profile=settings.profile,
            landing_dir=str(settings.landing_dir),
            shared_data_dir=str(settings.shared_data_dir),
        ),
    }
