"""Every setting tag_pipeline reads from the environment, in one place.

Plain Python (no Dagster, no MLflow): the command line reads it without importing Dagster, and
``defs/resources.py`` builds the Dagster resources from it. Out of the box everything lives in
one project home folder (``./.tag_pipeline``, or ``TAG_PIPELINE_HOME``): the DuckDB warehouse,
the MLflow store, the Dagster instance, the pseudonym key and the landing folders. Each
location can be pointed elsewhere on its own (the README's *Settings* lists every variable).
An empty variable counts as unset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from tag_pipeline.lib.events.retrain import DEFAULT_FEEDBACK_THRESHOLD

REPO_ROOT = Path(__file__).resolve().parents[2]
SQL_ROOT = REPO_ROOT / "dbt_like_sql"
# `make mlflow-ui` serves the local store there; a server is its own UI.
LOCAL_MLFLOW_UI = "http://127.0.0.1:5000"
# The first day of the daily sales partitions (partitions are fixed when definitions load).
DEFAULT_SALES_HISTORY_START = "2025-01-01"
PSEUDONYM_KEY_ENV = "TAG_PIPELINE_PSEUDONYM_KEY"


class SettingError(ValueError):
    """A setting has a value of the wrong form (the message names the variable)."""


@dataclass(frozen=True)
class Settings:
    """The settings of one process, read once from its environment by ``read_settings``."""

    home: Path
    dagster_home: Path
    duckdb_path: str
    duckdb_memory_limit: str
    duckdb_threads: int
    operations_db: str
    tracking_uri: str
    registry_uri: str | None
    mlflow_experiment: str
    mlflow_artifacts: str
    mlflow_ui_url: str | None
    pseudonym_key_env: str
    pseudonym_key_set: bool
    pseudonym_key_file: Path
    profile: str
    landing_dir: Path
    shared_data_dir: Path
    export_dir: str
    retrain_feedback_threshold: int
    sales_history_start: str
    dagster_pg_url: str | None
    embedding_cache: str


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name) or str(default)
    try:
        return int(value)
    except ValueError as exc:
        raise SettingError(f"{name}={value!r} is not a whole number") from exc


def project_home(environ: Mapping[str, str] | None = None) -> Path:
    """The project home folder (``TAG_PIPELINE_HOME``, default ``./.tag_pipeline``)."""
    env = os.environ if environ is None else environ
    return Path(env.get("TAG_PIPELINE_HOME") or ".tag_pipeline").expanduser().resolve()


def read_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from ``environ`` (default ``os.environ``).

    Raises:
        SettingError: a number or date setting is not one.
    """
    env = os.environ if environ is None else environ
    home = project_home(env)
    tracking_uri = env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    sales_start = env.get("TAG_PIPELINE_SALES_HISTORY_START") or DEFAULT_SALES_HISTORY_START
    try:
        date.fromisoformat(sales_start)
    except ValueError as exc:
        raise SettingError(f"TAG_PIPELINE_SALES_HISTORY_START={sales_start!r} is not a "
                           "YYYY-MM-DD date") from exc
    return Settings(
        home=home,
        dagster_home=Path(env.get("DAGSTER_HOME") or home / "dagster"),
        duckdb_path=env.get("TAG_PIPELINE_DUCKDB_PATH") or str(home / "warehouse.duckdb"),
        # DuckDB spills to disk past this; it bounds the pipeline's memory on one machine.
        duckdb_memory_limit=env.get("TAG_PIPELINE_DUCKDB_MEMORY_LIMIT") or "1GB",
        duckdb_threads=_int(env, "TAG_PIPELINE_DUCKDB_THREADS", os.cpu_count() or 2),
        operations_db=env.get("TAG_PIPELINE_OPERATIONS_DB") or str(home / "operations.duckdb"),
        tracking_uri=tracking_uri,
        registry_uri=env.get("MLFLOW_REGISTRY_URI") or None,
        mlflow_experiment=env.get("TAG_PIPELINE_MLFLOW_EXPERIMENT") or "tag_pipeline",
        mlflow_artifacts=(env.get("TAG_PIPELINE_MLFLOW_ARTIFACTS")
                          or (home / "mlflow" / "artifacts").as_uri()),
        mlflow_ui_url=env.get("TAG_PIPELINE_MLFLOW_UI_URL") or (
            None if tracking_uri.startswith("http") else LOCAL_MLFLOW_UI),
        pseudonym_key_env=PSEUDONYM_KEY_ENV,
        pseudonym_key_set=bool(env.get(PSEUDONYM_KEY_ENV)),
        pseudonym_key_file=home / "secrets" / "pseudonym.key",
        profile=env.get("TAG_PIPELINE_PROFILE") or "demo",
        landing_dir=Path(env.get("TAG_PIPELINE_LANDING_DIR") or home / "landing"),
        shared_data_dir=Path(env.get("TAG_PIPELINE_SHARED_DATA")
                             or REPO_ROOT.parent / "shared" / "data"),
        export_dir=env.get("TAG_PIPELINE_EXPORT_DIR") or str(home / "exports"),
        retrain_feedback_threshold=_int(env, "TAG_PIPELINE_RETRAIN_FEEDBACK_THRESHOLD",
                                        DEFAULT_FEEDBACK_THRESHOLD),
        sales_history_start=sales_start,
        dagster_pg_url=env.get("TAG_PIPELINE_DAGSTER_PG_URL") or None,
        embedding_cache=(env.get("TAG_PIPELINE_EMBEDDING_CACHE")
                         or str(home / "embeddings.sqlite")),
    )


# The registered models in the MLflow model registry.
TAGGER_MODEL_NAME = "tag_pipeline_tagger"
REFINER_MODEL_NAME = "tag_pipeline_refiner"


@dataclass(frozen=True)
class MlflowStore:
    """Where the MLflow tracking store and model registry are, and the registered models' names
    (the Dagster ``MlflowResource`` and the command line both use it)."""

    tracking_uri: str
    registry_uri: str | None = None
    registered_model_name: str = TAGGER_MODEL_NAME
    refiner_model_name: str = REFINER_MODEL_NAME

    @classmethod
    def of(cls, settings: Settings) -> MlflowStore:
        return cls(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)

    def activate(self) -> None:
        """Point the ``mlflow`` module (fluent API, ``models:/`` URIs) at this store."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri or self.tracking_uri)

    def client(self):  # -> mlflow.MlflowClient; mlflow is imported only where it is used
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri,
                            registry_uri=self.registry_uri or self.tracking_uri)


def read_pseudonym_key(key_env: str, key_file: Path | None,
                       environ: Mapping[str, str] | None = None) -> bytes:
    """The pseudonymisation key: the variable ``key_env`` if set, else the key file that
    ``tag-pipeline init`` writes; an error that names both when there is none."""
    from tag_pipeline.lib.events import load_key

    env = os.environ if environ is None else environ
    if env.get(key_env):
        return load_key(env[key_env], setting=key_env)
    path = key_file.expanduser() if key_file else None
    if path is None or not path.is_file():
        return load_key(None, setting=f"{key_env} (or the key file {path}, written by "
                                      "`tag-pipeline init`)")
    return load_key(path.read_text(encoding="utf-8").strip(), setting=f"the key file {path}")
