"""Fixtures of the lib tests: the session's one tiny tagger, shared by the bundle, pyfunc and
refiner tests (what it is made of lives in ``models_data.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tag_pipeline_tests.lib.models_data import (
    AS_TRAINED,
    products_frame,
    train_tiny_tagger,
    write_png,
)
from tag_pipeline_tests.support import build_once


def image_files(folder: Path) -> dict[str, Path]:
    """A blue and a black photo, a corrupt PNG and a path with no file, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    bad = folder / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    return {"blue": Path(write_png(folder / "blue.png", (0, 0, 255))),
            "black": Path(write_png(folder / "black.png", (0, 0, 0))),
            "corrupt": bad, "missing": folder / "absent.png"}


@pytest.fixture(scope="session")
def tiny_images(tmp_path_factory) -> dict[str, Path]:
    return image_files(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def tiny_tagger_dir(tmp_path_factory) -> Path:
    """The session's tiny tagger (``train_tiny_tagger``, photos on products 0 and 8), trained
    once and shared by the pytest-xdist workers: ``bundle/`` as ``save_bundle`` wrote it, and
    ``as_trained.npz``, what the freshly trained model gave before it was saved (scores of
    every product per head ``scores|<head>``, thresholds ``thresholds|<head>``), so that the
    round-trip test compares a loaded bundle with the model as it was trained. Read only."""

    def build(folder: Path) -> None:
        from tag_pipeline.lib.models.bundle import save_bundle
        from tag_pipeline.lib.models.serving import product_scores

        images = image_files(folder / "images")
        bundle = train_tiny_tagger({0: str(images["blue"]), 8: str(images["black"])})
        save_bundle(bundle, folder / "bundle")
        scores = product_scores(bundle, products_frame())
        np.savez(folder / AS_TRAINED,
                 **{f"scores|{name}": value for name, value in scores.items()},
                 **{f"thresholds|{name}": value for name, value in bundle.thresholds.items()})

    return build_once(tmp_path_factory, "tiny_tagger", build)


@pytest.fixture(scope="session")
def tiny_tagger(tiny_tagger_dir):  # -> bundle.TaggerBundle
    """The session's tiny tagger, loaded (one object per worker: do not change it)."""
    from tag_pipeline.lib.models.bundle import load_bundle

    return load_bundle(tiny_tagger_dir / "bundle")
