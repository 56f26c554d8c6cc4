"""Resolve product image references safely and verify that the images decode.

An image reference is resolved inside the catalog's image folder only: a path that leaves it
(``../../etc/passwd``, an absolute path elsewhere, a symlink pointing out) is flagged
``outside_root`` and never opened. Verification is cached twice: a file whose size and
modification time are unchanged is not hashed again, and an image whose content hash was
verified before is not decoded again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from tag_pipeline.lib.hashing import file_sha256
from tag_pipeline.lib.vocabulary import IMAGE_STATUSES


@dataclass(frozen=True)
class ImageVerdict:
    """What decoding one image's content showed."""

    status: str
    width: int | None
    height: int | None
    detail: str

    def __post_init__(self) -> None:
        if self.status not in IMAGE_STATUSES:
            raise ValueError(f"image status {self.status!r} is not one of {IMAGE_STATUSES} "
                             "(tag_pipeline.lib.vocabulary)")


@dataclass(frozen=True)
class ImageCheck:
    """The check of one image reference."""

    image_ref: str
    image_path: str | None
    status: str
    width: int | None
    height: int | None
    content_hash: str | None
    detail: str


@dataclass(frozen=True)
class FileStamp:
    """Size and modification time of a file, the key of the hash cache."""

    size: int
    mtime_ns: int


def resolve_image(ref: str, base_dir: Path, image_root: Path) -> tuple[Path | None, str, str]:
    """Resolve ``ref`` (relative to ``base_dir``) and require it inside ``image_root``.

    Returns (path, status, detail); path is None unless the reference is allowed.
    """
    ref = ref.strip()
    if not ref:
        return None, "none", ""
    if "://" in ref:
        return None, "unsupported", f"remote image reference {ref[:200]!r} is not fetched"
    if "\x00" in ref:
        return None, "outside_root", "image reference contains a NUL byte"
    root = image_root.resolve()
    candidate = Path(ref)
    if not candidate.is_absolute():
        candidate = base_dir / candidate
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        return None, "outside_root", f"{ref[:200]!r} resolves outside the image folder {root}"
    return resolved, "ok", ""


def decode_image(path: Path) -> ImageVerdict:
    """Decode an image fully: 'ok' with its size, or 'corrupt' with the decoder's error.

    The error never names the file (Pillow's does: "cannot identify image file '/a.jpg'"):
    a verdict is kept per content hash and reported for every path with those bytes, each
    under its own path."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        for name in (repr(str(path)), str(path)):
            detail = detail.replace(name, "the file")
        return ImageVerdict("corrupt", None, None, detail[:300])
    return ImageVerdict("ok", width, height, "")


@dataclass
class VerificationStats:
    """How much work a verification pass really did."""

    refs: int = 0
    hashed: int = 0
    decoded: int = 0


def verify_images(
    refs: Iterable[str],
    base_dir: Path,
    image_root: Path,
    min_px: int,
    hash_cache: dict[tuple[str, FileStamp], str],
    verdict_cache: dict[str, ImageVerdict],
    workers: int = 2,
) -> tuple[list[ImageCheck], VerificationStats]:
    """Check every image reference, reusing and extending the two caches in place.

    Args:
        refs: distinct image references as written in the catalog.
        base_dir: the folder relative references start from (the catalog root).
        image_root: the folder images must stay inside.
        min_px: minimum width and height.
        hash_cache: (resolved path, stamp) -> content hash; updated with new entries.
        verdict_cache: content hash -> verdict; updated with new entries.
        workers: decoding threads (Pillow releases the GIL while decoding).
    """
    stats = VerificationStats()

    def locate(ref: str) -> tuple[ImageCheck | None, Path | None, str | None, bool]:
        """Resolve and hash one reference: (final check or None, path, digest, hashed)."""
        path, status, detail = resolve_image(ref, base_dir, image_root)
        if path is None:
            return ImageCheck(ref, None, status, None, None, None, detail), None, None, False
        try:
            st = os.stat(path)
        except OSError:
            return ImageCheck(ref, None, "missing", None, None, None,
                              f"no file at {path}"), None, None, False
        if not path.is_file():
            return ImageCheck(ref, None, "missing", None, None, None,
                              f"{path} is not a file"), None, None, False
        key = (str(path), FileStamp(st.st_size, st.st_mtime_ns))
        digest = hash_cache.get(key)
        if digest is not None:
            return None, path, digest, False
        digest = file_sha256(path)
        hash_cache[key] = digest
        return None, path, digest, True

    refs = list(refs)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        located = list(pool.map(locate, refs))
        # Decode each unknown content once, however many references share it.
        to_decode: dict[str, Path] = {}
        for _, path, digest, _ in located:
            if digest is not None and digest not in verdict_cache:
                to_decode.setdefault(digest, path)
        for digest, verdict in zip(to_decode, pool.map(decode_image, to_decode.values()),
                                   strict=True):
            verdict_cache[digest] = verdict
    stats.refs = len(refs)
    stats.hashed = sum(1 for *_, hashed in located if hashed)
    stats.decoded = len(to_decode)

    results: list[ImageCheck] = []
    for ref, (final, path, digest, _) in zip(refs, located, strict=True):
        if final is not None:
            results.append(final)
            continue
        verdict = verdict_cache[digest]
        if verdict.status == "ok" and min(verdict.width, verdict.height) < min_px:
            verdict = ImageVerdict("too_small", verdict.width, verdict.height,
                                   f"{verdict.width}x{verdict.height} px is below the "
                                   f"minimum of {min_px} px")
        image_path = str(path) if verdict.status == "ok" else None
        results.append(ImageCheck(ref, image_path, verdict.status, verdict.width,
                                  verdict.height, digest, verdict.detail))
    return results, stats
