"""Watching a landing folder: which files are new or changed since a cursor.

A file's marker is its size and modification time (cheap to read on every sensor tick; the
loaders themselves then skip content they have already loaded, by content hash). The cursor
is a JSON object ``{relative path: marker}`` of the files already handed to a run, so a file
produces one run request, and a file rewritten in place produces another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

LANDING_SUFFIXES = (".csv", ".jsonl", ".parquet")


@dataclass(frozen=True)
class LandingBatch:
    """The files that arrived since the cursor, and the cursor that includes them."""

    files: tuple[str, ...]
    cursor: str

    @property
    def run_key(self) -> str:
        """A key unique to this set of file versions (the same batch never runs twice)."""
        digest = hashlib.sha256(self.cursor_delta.encode("utf-8")).hexdigest()[:24]
        return f"{len(self.files)}-files-{digest}"

    @property
    def cursor_delta(self) -> str:
        markers = json.loads(self.cursor)
        return json.dumps({f: markers[f] for f in self.files}, sort_keys=True)


def landing_files(folder: Path) -> list[Path]:
    """The data files under ``folder`` (CSV, JSON Lines, Parquet; hidden files skipped)."""
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix.lower() in LANDING_SUFFIXES
            and not p.name.startswith(".")]


def _markers(paths: list[Path], base: Path) -> dict[str, str]:
    out = {}
    for path in paths:
        stat = path.stat()
        out[path.relative_to(base).as_posix()] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return out


def parse_cursor(cursor: str | None) -> dict[str, str]:
    """The markers of a cursor (an empty or missing cursor has none)."""
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except json.JSONDecodeError as exc:
        raise ValueError(f"landing sensor cursor is not JSON: {cursor[:80]!r}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"landing sensor cursor must be a JSON object, got {type(data)}")
    return {str(k): str(v) for k, v in data.items()}


def new_files(folder: Path, cursor: str | None, paths: list[Path] | None = None
              ) -> LandingBatch | None:
    """The landing files that are not in ``cursor`` (or changed since), or None.

    Args:
        folder: The landing folder; file names in the cursor are relative to it.
        cursor: The previous cursor (None on the first tick).
        paths: The files to consider (default: ``landing_files(folder)``).

    Files that disappeared stay in the cursor: a landing folder is append-only, and a file
    removed and put back unchanged must not be loaded twice.
    """
    seen = parse_cursor(cursor)
    current = _markers(landing_files(folder) if paths is None else paths, folder)
    fresh = tuple(f for f, marker in current.items() if seen.get(f) != marker)
    if not fresh:
        return None
    merged = {**seen, **{f: current[f] for f in fresh}}
    return LandingBatch(files=fresh, cursor=json.dumps(merged, sort_keys=True))
