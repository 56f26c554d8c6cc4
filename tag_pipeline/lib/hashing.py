"""Content hashes of files: the one sha256 reader used for landing files, images and SQL models."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

CHUNK_BYTES = 1 << 20


def file_sha256(path: Path, chunk_bytes: int = CHUNK_BYTES) -> str:
    """The sha256 (hex) of a file's content, read in chunks so a large file is never held."""
    return files_sha256([path], chunk_bytes)


def files_sha256(paths: Iterable[Path], chunk_bytes: int = CHUNK_BYTES) -> str:
    """One sha256 (hex) over the contents of ``paths``, in the order given."""
    digest = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as handle:
            while chunk := handle.read(chunk_bytes):
                digest.update(chunk)
    return digest.hexdigest()
