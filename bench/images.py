"""Image verification speed: images/s on a cold pass (hash + decode every file) and on a warm
pass (cached by path stamp and content hash: nothing hashed or decoded again).

Uses the myntra photos in ../shared/data when present, else the demo catalog's images.

    .venv/bin/python bench/images.py [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, report  # noqa: E402

from tag_pipeline.lib.images import verify_images  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=0, help="check at most N images")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tp_bench_img_") as tmp:
        folder = SHARED_DATA / "myntra" / "images"
        source = "myntra photos"
        if not folder.is_dir():
            from tag_pipeline.lib.catalog.demo import generate_demo_catalog

            generate_demo_catalog(Path(tmp))
            folder, source = Path(tmp) / "images", "demo catalog images"
        refs = sorted(p.name for p in folder.iterdir())
        if args.limit:
            refs = refs[: args.limit]
        hashes: dict = {}
        verdicts: dict = {}
        started = time.perf_counter()
        checks, cold = verify_images(refs, folder, folder, 32, hashes, verdicts)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        _, warm = verify_images(refs, folder, folder, 32, hashes, verdicts)
        warm_s = time.perf_counter() - started
    ok = sum(1 for c in checks if c.status == "ok")
    report([
        ("images", f"{len(refs):,} {source} ({ok:,} ok)"),
        ("cold pass", f"{cold_s:.2f} s, {len(refs) / cold_s:,.0f} images/s "
                      f"({cold.hashed:,} hashed, {cold.decoded:,} decoded)"),
        ("warm pass", f"{warm_s:.2f} s, {len(refs) / warm_s:,.0f} images/s "
                      f"({warm.hashed} hashed, {warm.decoded} decoded)"),
    ])


if __name__ == "__main__":
    main()
