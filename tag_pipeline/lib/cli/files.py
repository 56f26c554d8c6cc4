"""Product files in, tag files out: CSV, JSON Lines or Parquet, chosen by the extension.

A product file has one row per product and these columns (others are ignored):

- ``product_id`` (required): the product's id, unique within the file;
- ``title`` (required): the title, in any language;
- ``description`` (optional);
- ``image_path`` (optional): an image file; a relative path starts at the product file's
  folder. An empty value means no image.

Files are read lazily with polars and handed on in batches, so a large file is never held
in memory whole. An image that is missing or does not decode is dealt with as the pipeline
deals with one (``image_status`` of ``cleaned_products``): the product is tagged from its text
only, and the problem is reported per row. Tag files are written to a temporary file next to
the target and renamed over it when complete, so a reader never sees half a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import polars as pl

from tag_pipeline.lib.images import decode_image, resolve_image

REQUIRED_COLUMNS = ("product_id", "title")
OPTIONAL_COLUMNS = ("description", "image_path")
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


class InputFileError(ValueError):
    """A product or labelled file cannot be used; the message names the file (and row)."""


def file_format(path: Path) -> str:
    """``csv``, ``jsonl`` or ``parquet`` from the file's extension."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputFileError(f"{path}: unknown file type {path.suffix!r}; use one of "
                             f"{', '.join(sorted(FORMATS))}")
    return fmt


def scan_file(path: Path, required: tuple[str, ...] = REQUIRED_COLUMNS,
              optional: tuple[str, ...] = OPTIONAL_COLUMNS) -> pl.LazyFrame:
    """The file's required and present optional columns as strings, lazily.

    Raises:
        InputFileError: the file is missing, of an unknown type, unreadable or lacks a
            required column.
    """
    fmt = file_format(path)
    if not path.is_file():
        raise InputFileError(f"input file {path} does not exist")
    try:
        if fmt == "csv":
            frame = pl.scan_csv(path, infer_schema=False)
        elif fmt == "jsonl":
            frame = pl.scan_ndjson(path, infer_schema_length=1000)
        else:
            frame = pl.scan_parquet(path)
        columns = frame.collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputFileError(f"input file {path} cannot be read: {_first_line(exc)}") from exc
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputFileError(f"input file {path} lacks column(s) {missing}; has {columns}")
    wanted = [*required, *(c for c in optional if c in columns)]
    return frame.select(pl.col(c).cast(pl.Utf8) for c in wanted)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _empty_id() -> pl.Expr:
    return pl.col("product_id").is_null() | (pl.col("product_id").str.strip_chars() == "")


def count_rows(path: Path) -> int:
    """Rows of a product file, in one streaming pass (Parquet: mostly its footer).

    Raises:
        InputFileError: as ``scan_file``, or a row has no product_id (naming the first such
            row, 1 being the first data row).
    """
    frame = scan_file(path)
    try:
        rows, empty = frame.select(pl.len(), _empty_id().sum()).collect().row(0)
        if empty:
            row = (frame.select(_empty_id().arg_max()).collect().item()) + 1
            raise InputFileError(f"input file {path} row {row}: product_id is empty")
    except pl.exceptions.PolarsError as exc:
        raise InputFileError(f"input file {path} cannot be read: {_first_line(exc)}") from exc
    return int(rows)


def read_batches(path: Path, batch_size: int, required: tuple[str, ...] = REQUIRED_COLUMNS,
                 optional: tuple[str, ...] = OPTIONAL_COLUMNS) -> Iterator[pl.DataFrame]:
    """The file's rows in batches of ``batch_size`` (the last may be smaller).

    Raises:
        InputFileError: as ``scan_file``; also a row without a product_id (naming the row,
            1 being the first data row) or a file that stops parsing part way.
    """
    if batch_size < 1:
        raise InputFileError(f"batch size must be at least 1, got {batch_size}")
    frame = scan_file(path, required, optional)
    offset = 0
    try:
        for batch in frame.collect_batches(chunk_size=batch_size):
            empty = batch.select(_empty_id())["product_id"]
            if empty.any():
                row = offset + int(empty.arg_max()) + 1
                raise InputFileError(f"input file {path} row {row}: product_id is empty")
            yield batch
            offset += batch.height
    except pl.exceptions.PolarsError as exc:
        raise InputFileError(f"input file {path} cannot be read after row {offset}: "
                             f"{_first_line(exc)}") from exc


@dataclass(frozen=True)
class ImageProblem:
    """An image a product names that cannot be used; the product is tagged from its text."""

    row: int  # 1 = the file's first data row
    product_id: str
    path: str
    status: str  # as in image_checks: missing, corrupt, outside_root, unsupported, ...
    detail: str

    def message(self, source: Path | str) -> str:
        """One line for the user."""
        status = {"outside_root": "outside the image root (not opened)",
                  "unsupported": "not supported"}.get(self.status, self.status)
        return (f"{source} row {self.row} (product {self.product_id}): image {self.path} is "
                f"{status} ({self.detail}); tagged from its text only")


def check_images(batch: pl.DataFrame, base_dir: Path, first_row: int = 1,
                 image_root: Path | None = None) -> tuple[pl.DataFrame, list[ImageProblem]]:
    """Resolve each product's ``image_path`` against ``base_dir``, inside ``image_root``
    (default: ``base_dir``), and decode it.

    The rule of ``lib.images.resolve_image``, as the pipeline applies it: a path that leaves
    the image root (``../../etc/passwd``, an absolute path elsewhere, a symlink out) is
    reported ``outside_root`` and never opened; a remote URL is ``unsupported``.

    Returns:
        The batch with ``image_path`` absolute where the image decodes and null where there is
        none or it cannot be used, and the problems found.
    """
    if "image_path" not in batch.columns:
        return batch, []
    resolved: list[str | None] = []
    problems: list[ImageProblem] = []
    ids = batch["product_id"].to_list()
    for i, ref in enumerate(batch["image_path"].to_list()):
        ref = (ref or "").strip()
        if not ref:
            resolved.append(None)
            continue
        allowed, status, detail = resolve_image(ref, base_dir, image_root or base_dir)
        path = allowed if allowed is not None else (
            Path(ref) if Path(ref).is_absolute() else base_dir / ref)
        if allowed is None:
            pass  # outside the root or remote: reported, never opened
        elif not path.is_file():
            status, detail = "missing", f"no file at {path}"
        else:
            verdict = decode_image(path)
            status, detail = verdict.status, verdict.detail
        if status == "ok":
            resolved.append(str(path))
        else:
            resolved.append(None)
            problems.append(ImageProblem(first_row + i, str(ids[i]), str(path), status, detail))
    return batch.with_columns(pl.Series("image_path", resolved, dtype=pl.Utf8)), problems


class AtomicWriter:
    """Writes frames of one schema to ``path`` (CSV, JSON Lines or Parquet by extension)
    through a temporary file that replaces ``path`` only on a clean ``close``."""

    def __init__(self, path: Path, schema: dict[str, pl.DataType]) -> None:
        self.path = path
        self.format = file_format(path)
        if not path.parent.is_dir():
            raise InputFileError(f"output folder {path.parent} does not exist")
        self.schema = pl.Schema(schema)
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.rows = 0
        self._started = False
        self._parquet = None
        self._handle = None

    def write(self, frame: pl.DataFrame) -> None:
        """Append a frame (its columns are cast to the schema, in the schema's order)."""
        frame = frame.select(pl.col(n).cast(t) for n, t in self.schema.items())
        if self.format == "parquet":
            import pyarrow.parquet as pq

            table = frame.to_arrow()
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.tmp, table.schema)
            self._parquet.write_table(table)
        else:
            if self._handle is None:
                self._handle = self.tmp.open("wb")
            if self.format == "csv":
                frame.write_csv(self._handle, include_header=not self._started)
            else:
                frame.write_ndjson(self._handle)
        self._started = True
        self.rows += frame.height

    def close(self) -> None:
        """Finish the file and move it into place."""
        if not self._started:
            self.write(pl.DataFrame(schema=self.schema))
        if self._parquet is not None:
            self._parquet.close()
        if self._handle is not None:
            self._handle.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the temporary file; ``path`` stays as it was."""
        if self._parquet is not None:
            self._parquet.close()
        if self._handle is not None:
            self._handle.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
