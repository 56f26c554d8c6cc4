"""Shared fixtures only (what they use lives in ``support.py``): small catalogs written to
tmp_path, real DuckDB files, real profiles, and the session's trained project home."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
import yaml

from tag_pipeline.lib.catalog.profile import CatalogProfile, load_profile
from tag_pipeline_tests.support import (
    BASIC_PROFILE,
    ProjectHome,
    build_once,
    copy_home,
    home_env,
    prepare_home,
)


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


@pytest.fixture(scope="session")
def trained_snapshot(tmp_path_factory) -> ProjectHome:
    """One project home per test session right after catalog_job, model_job and tags_job ran
    on the demo catalog (tiny model): a champion in its sqlite registry, tags in its warehouse.
    Never used in place: ``trained_home`` and ``trained_home_copy`` are copies of it. Built
    once and shared by the pytest-xdist workers (``build_once``)."""

    def build(folder: Path) -> None:
        prepared = prepare_home(folder / "home")
        (folder / "runs.json").write_text(json.dumps(prepared.runs), encoding="utf-8")

    folder = build_once(tmp_path_factory, "snapshot", build)
    home = folder / "home"
    return ProjectHome(home=home, env={**os.environ, **home_env(home)},
                       runs=json.loads((folder / "runs.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def trained_home(trained_snapshot, tmp_path_factory) -> ProjectHome:
    """The session's shared trained home (a copy of the snapshot) for tests that read it:
    command line, REST, browser. Tests that change it (promote, rollback, new runs) must leave
    the champion in place, or take a ``trained_home_copy``."""
    return copy_home(trained_snapshot, tmp_path_factory.mktemp("project") / "home")


@pytest.fixture
def trained_home_copy(trained_snapshot, tmp_path) -> ProjectHome:
    """This test's own copy of the trained home, as it was right after the three jobs."""
    return copy_home(trained_snapshot, tmp_path / "trained" / "home")


TRAINED = {"trained_home", "trained_home_copy", "trained_snapshot"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs a trained home (a whole catalog, model and tags run) is slow, whether
    or not it says so.

    Order, for ``make test``'s two workers (``--dist loadscope``: a module runs on one worker):
    the first module that needs the trained home, then the modules that do not, then the other
    modules that do. One worker builds the trained home while the other runs the lib tests, and
    no worker waits for it."""
    trained_modules: list[str] = []
    for item in items:
        if TRAINED & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
            if item.module.__name__ not in trained_modules:
                trained_modules.append(item.module.__name__)

    def rank(item: pytest.Item) -> int:
        module = item.module.__name__
        if module not in trained_modules:
            return 1
        return 0 if module == trained_modules[0] else 2

    items.sort(key=rank)
