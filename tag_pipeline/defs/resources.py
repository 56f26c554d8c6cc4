"""Every resource instance, built once; the one place that reads the environment.

Out of the box everything lives in one project home folder (``./.tag_pipeline``, or
``TAG_PIPELINE_HOME``): the DuckDB warehouse, the MLflow store, the Dagster instance and the
landing folders. Each location can be pointed elsewhere on its own (see README).
"""


import os
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from tag_pipeline.lib.catalog.profile import CatalogProfile, load_profile
from tag_pipeline.lib.events.retrain import DEFAULT_FEEDBACK_THRESHOLD

REPO_ROOT = Path(__file__).resolve().parents[2]
SQL_ROOT = REPO_ROOT / "dbt_like_sql"


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
    registered_model_name: str = "tag_pipeline_tagger"
    refiner_model_name: str = "tag_pipeline_refiner"
    ui_url: str | None = None

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        for uri in (self.tracking_uri, self.registry_uri or ""):
            if uri.startswith("sqlite:///"):
                Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

    def activate(self) -> None:
        """Point the ``mlflow`` module (fluent API, ``models:/`` URIs) at this store."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri or self.tracking_uri)

    def client(self):  # -> mlflow.MlflowClient; mlflow is imported only where it is used
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri,
                            registry_uri=self.registry_uri or self.tracking_uri)

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
    key_env: str = "TAG_PIPELINE_PSEUDONYM_KEY"
    key_file: str | None = None

    def load(self) -> bytes:
        """The key as bytes; an error that names the setting when there is none."""
        from tag_pipeline.lib.events import load_key

        if os.environ.get(self.key_env):
            return load_key(os.environ[self.key_env], setting=self.key_env)
        path = Path(self.key_file).expanduser() if self.key_file else None
        if path is None or not path.is_file():
            return load_key(None, setting=f"{self.key_env} (or the key file {path}, written "
                                          "by `tag-pipeline init`)")
        return load_key(path.read_text(encoding="utf-8").strip(),
                        setting=f"the key file {path}")


class OperationsResource(dg.ConfigurableResource):
    """The operations log: a small DuckDB file apart from the warehouse (failed runs)."""

    database: str


class RetrainPolicyResource(dg.ConfigurableResource):
    """When accumulated feedback retrains the tagger before the weekly schedule: the number of
    feedback events loaded since the last training that starts ``retrain_job``."""

    feedback_threshold: int = DEFAULT_FEEDBACK_THRESHOLD


LOCAL_MLFLOW_UI = "http://127.0.0.1:5000"

# The first day of the daily sales partitions (partitions are fixed when definitions load).
DEFAULT_SALES_HISTORY_START = "2025-01-01"


def sales_history_start() -> str:
    """The first day (YYYY-MM-DD) of ``sales_daily``'s partitions:
    ``TAG_PIPELINE_SALES_HISTORY_START``, default 2025-01-01."""
    from datetime import date

    value = os.environ.get("TAG_PIPELINE_SALES_HISTORY_START") or DEFAULT_SALES_HISTORY_START
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"TAG_PIPELINE_SALES_HISTORY_START={value!r} is not a YYYY-MM-DD "
                         "date") from exc
    return value


def project_home() -> Path:
    """The project home folder (``TAG_PIPELINE_HOME``, default ``./.tag_pipeline``)."""
    return Path(os.environ.get("TAG_PIPELINE_HOME", ".tag_pipeline")).expanduser().resolve()


def _setting(name: str, default: Path | str) -> str:
    return os.environ.get(name) or str(default)


def build_resources(check_moved: bool = True) -> dict[str, dg.ConfigurableResource]:
    """The resources for the current environment.

    Raises:
        HomeMovedError: the project home was copied or moved and not relocated yet (its
            stores would read the original's files; ``lib.home``), unless ``check_moved`` is
            False (``doctor`` and ``relocate``, which report or fix it).
    """
    home = project_home()
    if check_moved:
        from tag_pipeline.lib.home import check_home

        check_home(home)
    return {
        "duckdb": WarehouseResource(
            database=_setting("TAG_PIPELINE_DUCKDB_PATH", home / "warehouse.duckdb"),
            # DuckDB spills to disk past this; it bounds the pipeline's memory on one machine.
            connection_config={
                "memory_limit": _setting("TAG_PIPELINE_DUCKDB_MEMORY_LIMIT", "1GB"),
                "threads": int(_setting("TAG_PIPELINE_DUCKDB_THREADS", os.cpu_count() or 2)),
            },
        ),
        "mlflow": MlflowResource(
            tracking_uri=_setting("MLFLOW_TRACKING_URI",
                                  f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"),
            registry_uri=os.environ.get("MLFLOW_REGISTRY_URI") or None,
            experiment_name=_setting("TAG_PIPELINE_MLFLOW_EXPERIMENT", "tag_pipeline"),
            artifact_location=_setting("TAG_PIPELINE_MLFLOW_ARTIFACTS",
                                       (home / "mlflow" / "artifacts").as_uri()),
            # `make mlflow-ui` serves the local store there; a server is its own UI.
            ui_url=os.environ.get("TAG_PIPELINE_MLFLOW_UI_URL") or (
                None if os.environ.get("MLFLOW_TRACKING_URI", "").startswith("http")
                else LOCAL_MLFLOW_UI),
        ),
        "pseudonyms": PseudonymResource(
            key_file=str(home / "secrets" / "pseudonym.key"),
        ),
        "operations": OperationsResource(
            database=_setting("TAG_PIPELINE_OPERATIONS_DB", home / "operations.duckdb"),
        ),
        "retrain_policy": RetrainPolicyResource(feedback_threshold=int(_setting(
            "TAG_PIPELINE_RETRAIN_FEEDBACK_THRESHOLD", DEFAULT_FEEDBACK_THRESHOLD))),
        "exports": ExportResource(
            directory=_setting("TAG_PIPELINE_EXPORT_DIR", home / "exports"),
        ),
        "catalog": CatalogResource(
            profile=_setting("TAG_PIPELINE_PROFILE", "demo"),
            landing_dir=_setting("TAG_PIPELINE_LANDING_DIR", home / "landing"),
            shared_data_dir=_setting("TAG_PIPELINE_SHARED_DATA", REPO_ROOT.parent / "shared/data"),
        ),
    }
