"""The one settings module: defaults under the project home, each location overridable on its
own, errors that name the variable, and no Dagster needed to read them."""

import subprocess
import sys
from pathlib import Path

import pytest

from tag_pipeline.lib.settings import MlflowStore, SettingError, read_settings


def test_defaults_live_in_the_project_home(tmp_path):
    settings = read_settings({"TAG_PIPELINE_HOME": str(tmp_path / "home")})
    home = (tmp_path / "home").resolve()
    assert settings.home == home
    assert settings.dagster_home == home / "dagster"
    assert settings.duckdb_path == str(home / "warehouse.duckdb")
    assert settings.tracking_uri == f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    assert settings.mlflow_artifacts == (home / "mlflow" / "artifacts").as_uri()
    assert settings.pseudonym_key_file == home / "secrets" / "pseudonym.key"
    assert settings.landing_dir == home / "landing"
    assert settings.embedding_cache == str(home / "embeddings.sqlite")
    assert settings.profile == "demo" and settings.mlflow_ui_url == "http://127.0.0.1:5000"
    assert not settings.pseudonym_key_set and settings.dagster_pg_url is None


def test_each_location_is_switched_on_its_own_and_empty_means_unset(tmp_path):
    settings = read_settings({
        "TAG_PIPELINE_HOME": str(tmp_path), "DAGSTER_HOME": "/srv/dagster",
        "TAG_PIPELINE_DUCKDB_PATH": "md:tags", "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "TAG_PIPELINE_DUCKDB_THREADS": "3", "TAG_PIPELINE_PROFILE": "",
        "TAG_PIPELINE_DAGSTER_PG_URL": "postgresql://x", "TAG_PIPELINE_PSEUDONYM_KEY": "k"})
    assert settings.dagster_home == Path("/srv/dagster")
    assert settings.duckdb_path == "md:tags" and settings.duckdb_threads == 3
    assert settings.tracking_uri == "http://mlflow:5000"
    assert settings.mlflow_ui_url is None  # a server is its own UI
    assert settings.profile == "demo"
    assert settings.dagster_pg_url == "postgresql://x" and settings.pseudonym_key_set
    store = MlflowStore.of(settings)
    assert store.tracking_uri == "http://mlflow:5000" and store.registry_uri is None


@pytest.mark.parametrize(("name", "value"), [("TAG_PIPELINE_DUCKDB_THREADS", "two"),
                                             ("TAG_PIPELINE_RETRAIN_FEEDBACK_THRESHOLD", "1.5"),
                                             ("TAG_PIPELINE_SALES_HISTORY_START", "2025-13-01")])
def test_a_malformed_setting_is_named(tmp_path, name, value):
    with pytest.raises(SettingError, match=f"{name}={value!r}"):
        read_settings({"TAG_PIPELINE_HOME": str(tmp_path), name: value})


def test_the_resources_are_built_from_the_same_settings(tmp_path):
    from tag_pipeline.defs.resources import build_resources

    settings = read_settings({"TAG_PIPELINE_HOME": str(tmp_path),
                              "TAG_PIPELINE_LANDING_DIR": str(tmp_path / "in")})
    resources = build_resources(check_moved=False, settings=settings)
    assert resources["duckdb"].database == settings.duckdb_path
    assert resources["mlflow"].store() == MlflowStore.of(settings)
    assert resources["catalog"].landing_dir == str(tmp_path / "in")
    assert resources["pseudonyms"].key_file == str(settings.pseudonym_key_file)


def test_the_command_line_reads_settings_without_importing_dagster(tmp_path):
    code = ("import sys; from tag_pipeline.cli import _settings, _profile_loader; "
            "_settings(); _profile_loader(None); "
            "print(sorted(m for m in ('dagster', 'mlflow', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"TAG_PIPELINE_HOME": str(tmp_path / "home"), "PATH": "/usr/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
