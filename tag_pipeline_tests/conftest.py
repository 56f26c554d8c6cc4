"""Shared fixtures: small catalogs written to tmp_path, real DuckDB files, real profiles."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
import yaml

from tag_pipeline.lib.catalog.profile import CatalogProfile, load_profile

REPO_ROOT = Path(__file__).resolve().parents[1]
SQL_ROOT = REPO_ROOT / "dbt_like_sql"
SHARED_DATA = Path(os.environ.get("TAG_PIPELINE_SHARED_DATA", REPO_ROOT.parent / "shared/data"))

# Keep the tests away from the user's project home and from GX/MLflow writing into the repo.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

BASIC_PROFILE = {
    "name": "shop",
    "root": "data",
    "source": {"files": ["*.csv", "*.jsonl", "*.parquet"]},
    "columns": {
        "id": "sku",
        "title": "title",
        "description": "description",
        "image": "image",
        "image_root": "images",
        "price": "price",
        "updated_at": "updated_at",
    },
    "tags": [
        {"column": "category_path", "type": "category", "shape": "path", "separator": " > ",
         "level_names": ["l1", "l2", "l3"]},
        {"column": "attributes", "type": "attribute", "shape": "key_value",
         "pair_separator": ";", "kv_separator": ":", "keys": ["color", "gender"]},
        {"column": "occasions", "type": "scene", "shape": "multi", "separator": "|"},
        {"column": "brand", "type": "attribute"},
        {"name": "style", "type": "style", "shape": "lexicon",
         "lexicon": {"Solid": ["solid", "纯色"], "Slim Fit": ["slim fit", "修身"]}},
    ],
}

HEADER = "sku,title,description,image,price,updated_at,category_path,attributes,occasions,brand"


@pytest.fixture
def write_catalog(tmp_path: Path) -> Callable[..., CatalogProfile]:
    """Write data files and a profile under tmp_path and return the loaded profile."""

    def _write(files: dict[str, str | bytes], profile: dict | None = None) -> CatalogProfile:
        data = tmp_path / "data"
        (data / "images").mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            path = data / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        profile_path = tmp_path / "shop.yaml"
        profile_path.write_text(yaml.safe_dump(profile or BASIC_PROFILE, allow_unicode=True),
                                encoding="utf-8")
        return load_profile(str(profile_path), {})

    return _write


@pytest.fixture
def con(tmp_path: Path):
    """A real DuckDB warehouse file in tmp_path."""
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def shared_data_or_skip(name: str) -> Path:
    """The path of a real data set in ../shared/data, or skip with the reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data set {path} is absent on this machine (../shared/data)")
    return path


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory):
    """One project home per test session after catalog_job, model_job and tags_job ran on the
    demo catalog (tiny model): a champion in its sqlite registry, tags in its warehouse.
    Tests that change it (promote, rollback, new runs) must leave the champion in place or use
    ``prepare_home`` on their own folder."""
    from tag_pipeline_tests.project_home import prepare_home

    return prepare_home(tmp_path_factory.mktemp("project") / "home")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the session's trained home (a whole catalog, model and tags run) is
    slow, whether or not it says so."""
    for item in items:
        if "trained_home" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
