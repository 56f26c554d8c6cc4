"""Helpers shared by the benchmark scripts (not part of the package or the tests)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SQL_ROOT = REPO_ROOT / "dbt_like_sql"
SHARED_DATA = Path(os.environ.get("TAG_PIPELINE_SHARED_DATA", REPO_ROOT.parent / "shared/data"))


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")


def write_generated_catalog(folder: Path, rows: int) -> None:
    """The demo catalog scaled to ``rows`` rows, written into ``folder`` by a separate process
    (so neither its time nor its memory counts in the calling benchmark's figures)."""
    subprocess.run(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; "
         "from tag_pipeline.lib.catalog.demo import write_scaled_catalog; "
         "write_scaled_catalog(Path(sys.argv[1]), int(sys.argv[2]))",
         str(folder), str(rows)],
        check=True,
    )
