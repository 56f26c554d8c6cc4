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


@dataclass(frozen=True)
class BadRow:
    """A line of a product file that is not tagged, and why (the pipeline's reject reasons:
    ``invalid_encoding``, ``malformed_line``, ``missing_id``, ``duplicate_id``)."""

    line: int  # the file's line (CSV: 1 is the header; JSON Lines and Parquet: 1 is the first row)
    reason: str
    detail: str
    raw: str | None = None

    def message(self, source: Path | str) -> str:
        """One line for the user."""
        return f"{source} line {self.line}: {self.reason} ({self.detail}); not tagged"


class ProductFile:
    """A product file read as the pipeline reads a landing file, so one bad line costs only
    itself: DuckDB's CSV reader with the columns from the header and no sniffing, JSON Lines
    line by line, Parquet as is (``lib.catalog.ingest``).

    Lines that cannot be read (invalid UTF-8, bad quoting, a wrong number of fields, a JSON
    line that is not an object) and rows without a product_id or repeating an earlier one are
    ``bad_rows``, each with its line and reason; every other row is in ``batches``, in file
    order, with its line in ``_line``. The rows are staged in a private in-memory DuckDB that
    spills to a temporary folder, so a large file is never held in Python memory whole.

    Raises:
        InputFileError: the file is missing, of an unknown type, has an unusable header or
            lacks a required column.
    """

    def __init__(self, path: Path, required: tuple[str, ...] = REQUIRED_COLUMNS,
                 optional: tuple[str, ...] | None = OPTIONAL_COLUMNS) -> None:
        """``optional``: the other columns to keep where present; None keeps all."""
        import tempfile

        import duckdb

        from tag_pipeline.lib.catalog import ingest

        self.path = path
        self.required = required
        fmt = file_format(path)
        if not path.is_file():
            raise InputFileError(f"input file {path} does not exist")
        self._spill = tempfile.TemporaryDirectory(prefix="tag-pipeline-read-")
        self._con = duckdb.connect(":memory:", config={"temp_directory": self._spill.name})
        con = self._con
        try:
            if fmt == "csv":
                with ingest.unix_newlines(path) as read:
                    ingest.stage_csv(con, path, read=read)
                present = [r[0] for r in con.execute("DESCRIBE _raw").fetchall()]
            elif fmt == "jsonl":
                with ingest.unix_newlines(path) as read:
                    ingest.stage_jsonl(con, read)
                present = sorted(ingest.jsonl_keys(con))
            else:
                ingest.stage_parquet(con, path)
                present = [r[0] for r in con.execute("DESCRIBE _src").fetchall()
                           if r[0] != "_line"]
            missing = [c for c in required if c not in present]
            if missing:
                raise InputFileError(f"input file {path} lacks column(s) {missing}; has "
                                     f"{present}")
            kept = [c for c in present if c not in required] if optional is None else [
                c for c in optional if c in present]
            self.columns = [*required, *kept]
            if fmt == "jsonl":
                ingest.stage_jsonl_columns(con, self.columns)
            self._select_rows()
        except (ValueError, duckdb.Error) as exc:
            self.close()
            if isinstance(exc, InputFileError):
                raise
            raise InputFileError(f"input file {path} cannot be read: {_first_line(exc)}"
                                 ) from exc
        except BaseException:
            self.close()
            raise
        self.rows = con.execute("SELECT count(*) FROM _ok").fetchone()[0]
        self.bad_rows = [BadRow(int(line), reason, detail, raw) for line, reason, detail, raw
                         in con.execute("SELECT line, error_type, error_message, raw_line "
                                        "FROM _bad ORDER BY line").fetchall()]

    def _select_rows(self) -> None:
        from tag_pipeline.lib.sql import quote_ident

        con = self._con
        cols = ", ".join(f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}"
                         for c in self.columns)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _rows AS
            SELECT _line, {cols},
                   nullif(trim(CAST(product_id AS VARCHAR)), '') IS NULL AS _no_id,
                   min(_line) OVER (PARTITION BY CAST(product_id AS VARCHAR)) AS _first
            FROM _src
        """)
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _bad AS
            SELECT line, error_type, error_message, raw_line FROM _rejects
            UNION ALL
            SELECT _line, CASE WHEN _no_id THEN 'missing_id' ELSE 'duplicate_id' END,
                   CASE WHEN _no_id THEN 'product_id is empty'
                        ELSE 'product_id ' || product_id || ' is already on line ' || _first
                   END, NULL
            FROM _rows WHERE _no_id OR _line <> _first
        """)
        con.execute("CREATE OR REPLACE TEMP TABLE _ok AS SELECT * EXCLUDE (_no_id, _first) "
                    "FROM _rows WHERE NOT _no_id AND _line = _first")

    def batches(self, batch_size: int, columns: tuple[str, ...] | None = None
                ) -> Iterator[pl.DataFrame]:
        """The good rows in file order, ``batch_size`` at a time: the row's line in ``_line``
        and its columns as strings (the required ones and those of ``columns`` the file has;
        default: all kept)."""
        from tag_pipeline.lib.sql import quote_ident

        if batch_size < 1:
            raise InputFileError(f"batch size must be at least 1, got {batch_size}")
        wanted = self.columns if columns is None else [
            c for c in self.columns if c in self.required or c in columns]
        select = ", ".join(["_line", *(quote_ident(c) for c in wanted)])
        reader = self._con.execute(f"SELECT {select} FROM _ok ORDER BY _line"
                                   ).fetch_record_batch(batch_size)
        for record_batch in reader:
            if record_batch.num_rows:
                yield pl.from_arrow(record_batch)

    def close(self) -> None:
        """Drop the staged rows and their spill folder."""
        self._con.close()
        self._spill.cleanup()

    def __enter__(self) -> ProductFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


BAD_ROW_COLUMNS = {"line": pl.Int64, "reason": pl.Utf8, "detail": pl.Utf8, "raw_line": pl.Utf8}


def write_bad_rows(path: Path, rows: list[BadRow]) -> None:
    """The bad lines of a product file, one row each (``BAD_ROW_COLUMNS``), written
    atomically to ``path`` (CSV, JSON Lines or Parquet by extension)."""
    with AtomicWriter(path, BAD_ROW_COLUMNS) as writer:
        writer.write(pl.DataFrame([(r.line, r.reason, r.detail, r.raw) for r in rows],
                                  schema=BAD_ROW_COLUMNS, orient="row"))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def read_batches(path: Path, batch_size: int, required: tuple[str, ...] = REQUIRED_COLUMNS,
                 optional: tuple[str, ...] = OPTIONAL_COLUMNS) -> Iterator[pl.DataFrame]:
    """The file's rows in batches of ``batch_size``, for readers that need every row (a
    labelled file): as ``ProductFile``, but the first bad row is an error.

    Raises:
        InputFileError: as ``ProductFile``, or naming the first bad row's line and reason.
    """
    with ProductFile(path, required, optional) as products:
        if products.bad_rows:
            bad = products.bad_rows[0]
            more = len(products.bad_rows) - 1
            raise InputFileError(f"input file {path} line {bad.line}: {bad.reason} "
                                 f"({bad.detail})" + (f"; {more} more bad line(s)" if more
                                                      else ""))
        yield from products.batches(batch_size)


@dataclass(frozen=True)
class ImageProblem:
    """An image a product names that cannot be used; the product is tagged from its text."""

    row: int  # the file's line (``_line`` of ``ProductFile``), else 1 = the first data row
    product_id: str
    path: str
    status: str  # as in image_checks: missing, corrupt, outside_root, unsupported, ...
    detail: str

    def message(self, source: Path | str) -> str:
        """One line for the user."""
        status = {"outside_root": "outside the image root (not opened)",
                  "unsupported": "not supported"}.get(self.status, self.status)
        return (f"{source} line {self.row} (product {self.product_id}): image {self.path} is "
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
    lines = (batch["_line"].to_list() if "_line" in batch.columns
             else list(range(first_row, first_row + batch.height)))
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
            problems.append(ImageProblem(lines[i], str(ids[i]), str(path), status, detail))
    return batch.with_columns(pl.Series("image_path", resolved, dtype=pl.Utf8)), problems


class AtomicWriter:
    """Writes frames of one schema to ``path`` (CSV, JSON Lines or Parquet by extension)
    through a temporary file that replaces ``path`` only on a clean ``close``.

    Where the OS allows (Linux, ``O_TMPFILE``), the temporary file has no name until ``close``
    links it in and renames it over ``path``: a command killed part way (even by SIGKILL)
    leaves nothing behind. Elsewhere it is ``.NAME.PID.tmp`` beside ``path``, removed on any
    error or interrupt."""

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
        self._unnamed: int | None = None  # a second descriptor of the O_TMPFILE file

    def _open(self):
        flag = getattr(os, "O_TMPFILE", None)
        if flag is not None and Path("/proc/self/fd").is_dir():
            try:
                fd = os.open(self.path.parent, flag | os.O_WRONLY, 0o644)
            except OSError:
                pass  # the file system has no unnamed files: use a named one
            else:
                self._unnamed = os.dup(fd)
                return os.fdopen(fd, "wb")
        return self.tmp.open("wb")

    def write(self, frame: pl.DataFrame) -> None:
        """Append a frame (its columns are cast to the schema, in the schema's order)."""
        frame = frame.select(pl.col(n).cast(t) for n, t in self.schema.items())
        if self._handle is None:
            self._handle = self._open()
        if self.format == "parquet":
            import pyarrow.parquet as pq

            table = frame.to_arrow()
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._handle, table.schema)
            self._parquet.write_table(table)
        elif self.format == "csv":
            frame.write_csv(self._handle, include_header=not self._started)
        else:
            frame.write_ndjson(self._handle)
        self._started = True
        self.rows += frame.height

    def _close_handles(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._handle is not None and not self._handle.closed:
            self._handle.close()

    def close(self) -> None:
        """Finish the file and move it into place."""
        if not self._started:
            self.write(pl.DataFrame(schema=self.schema))
        self._close_handles()
        if self._unnamed is not None:
            try:
                self.tmp.unlink(missing_ok=True)
                # linkat with AT_SYMLINK_FOLLOW (a dir_fd makes Python call linkat, not link)
                root = os.open("/", os.O_RDONLY)
                try:
                    os.link(f"/proc/self/fd/{self._unnamed}", self.tmp, src_dir_fd=root,
                            follow_symlinks=True)
                finally:
                    os.close(root)
            finally:
                os.close(self._unnamed)
                self._unnamed = None
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the temporary file; ``path`` stays as it was."""
        self._close_handles()
        if self._unnamed is not None:
            os.close(self._unnamed)  # the unnamed file goes with its last descriptor
            self._unnamed = None
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
