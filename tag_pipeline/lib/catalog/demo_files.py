"""Atomic writers for the demo's landing files: a reader never sees a half-written file.

Each file is written under a temporary name in its folder and moved into place with
``os.replace``.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import polars as pl

from tag_pipeline.lib.catalog import demo_shop as shop


@contextmanager
def atomic_file(path: Path, binary: bool = False) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success move it onto ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if binary:
            handle = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
        with handle:
            yield handle
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; landing files are read by other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_file(path, binary=True) as handle:
        handle.write(data)


def write_csv(path: Path, frame: pl.DataFrame) -> None:
    with atomic_file(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(shop.COLUMNS)
        writer.writerows(frame.select(shop.COLUMNS).iter_rows())


def write_jsonl(path: Path, frame: pl.DataFrame) -> None:
    with atomic_file(path) as handle:
        for row in frame.select(shop.COLUMNS).iter_rows(named=True):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


