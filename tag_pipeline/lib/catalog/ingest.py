"""Load catalog landing files into DuckDB, once per file content.

Each new (or changed) file is read by DuckDB itself (CSV reader with its reject store, JSON
Lines read line by line and parsed in SQL, Parquet), so the rows never pass through Python.
Rows the reader cannot parse are kept in ``raw_product_rejects`` with their line and the
reader's error; every loaded row keeps its file, line and load time. A file and its rows are
written in one transaction: a crash leaves the warehouse as it was before that file.

Catalog content never becomes SQL: file paths and values are bound as parameters, column names
from the profile are quoted identifiers.
"""

from __future__ import annotations

import csv
import gzip
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import duckdb

from tag_pipeline.lib.catalog.profile import CatalogProfile, ProfileError
from tag_pipeline.lib.hashing import file_sha256
from tag_pipeline.lib.sql import quote_ident, transaction

# The longest CSV line DuckDB will read; longer lines become 'malformed_line' rejects.
MAX_LINE_BYTES = 8 * 1024 * 1024

_DDL = (
    """
    CREATE TABLE IF NOT EXISTS ingest_files (
        load_id VARCHAR PRIMARY KEY,
        profile VARCHAR NOT NULL,
        source_file VARCHAR NOT NULL,
        content_hash VARCHAR NOT NULL,
        size_bytes BIGINT NOT NULL,
        file_format VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        rows_loaded BIGINT NOT NULL,
        rows_rejected BIGINT NOT NULL,
        loaded_at TIMESTAMP NOT NULL,
        run_id VARCHAR
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS raw_products (
        load_id VARCHAR NOT NULL,
        source_file VARCHAR NOT NULL,
        source_line BIGINT NOT NULL,
        loaded_at TIMESTAMP NOT NULL,
        product_id VARCHAR,
        title VARCHAR,
        description VARCHAR,
        image_ref VARCHAR,
        price_raw VARCHAR,
        updated_at_raw VARCHAR,
        tag_fields MAP(VARCHAR, VARCHAR)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS raw_product_rejects (
        load_id VARCHAR NOT NULL,
        source_file VARCHAR NOT NULL,
        source_line BIGINT NOT NULL,
        loaded_at TIMESTAMP NOT NULL,
        error_type VARCHAR NOT NULL,
        error_message VARCHAR,
        raw_line VARCHAR
    )
    """,
)


@dataclass
class FileLoad:
    """What happened to one landing file."""

    source_file: str
    status: str  # new | changed | unchanged | duplicate_content
    rows_loaded: int = 0
    rows_rejected: int = 0
    content_hash: str = ""
    detail: str = ""


@dataclass
class IngestReport:
    """The outcome of one ingest over a profile's landing files."""

    files: list[FileLoad] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)


def is_compressed(path: Path) -> bool:
    """True for a gzip-compressed file (``.gz``), which is read through gzip."""
    return path.suffix.lower() == ".gz"


def open_bytes(path: Path) -> BinaryIO:
    """The file's (uncompressed) bytes."""
    return gzip.open(path, "rb") if is_compressed(path) else path.open("rb")


def _line_chunks(path: Path, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """The file's bytes (uncompressed) in chunks that never split a ``\\r\\n`` (a chunk's
    closing ``\\r`` waits for the next one; a ``\\r`` that ends the file comes last, alone)."""
    carry = b""
    with open_bytes(path) as handle:
        while chunk := handle.read(chunk_bytes):
            data = carry + chunk
            carry = b"\r" if data.endswith(b"\r") else b""
            yield data[:-1] if carry else data
    if carry:
        yield carry


def _line_breaks(path: Path, chunk_bytes: int = 1 << 20) -> set[bytes]:
    """The kinds of line break in a file: any of ``\\r\\n``, ``\\n`` and a lone ``\\r``."""
    kinds: set[bytes] = set()
    for data in _line_chunks(path, chunk_bytes):
        crlf = data.count(b"\r\n")
        if crlf:
            kinds.add(b"\r\n")
        if data.count(b"\n") > crlf:
            kinds.add(b"\n")
        if data.count(b"\r") > crlf:
            kinds.add(b"\r")
        if len(kinds) > 1:
            break
    return kinds


@contextmanager
def unix_newlines(path: Path, chunk_bytes: int = 1 << 20) -> Iterator[Path]:
    """The file to read for ``path``: ``path`` itself when its lines all end in ``\\n`` or all
    in ``\\r\\n``, else a private copy with every line break (``\\r\\n``, ``\\n``, a lone
    ``\\r``) as ``\\n``. A gzip-compressed file (``.gz``) is always read through such a
    copy, uncompressed.

    DuckDB's CSV reader takes one line break for the whole file; a file that mixes them (rows
    appended by another tool, an Excel cell with a line break) fails as a whole. The copy has
    the same lines, so line numbers still name the source's lines (a lone ``\\r`` counts as
    a line break, as editors count it). On Linux the copy is unlinked as soon as it is made and
    read through ``/proc/self/fd``, so not even a killed process leaves it behind.
    """
    compressed = is_compressed(path)
    if not compressed:
        kinds = _line_breaks(path, chunk_bytes)
        if len(kinds) < 2 and kinds != {b"\r"}:
            yield path
            return
    # a compressed file is always read through an uncompressed copy, one pass
    suffix = path.with_suffix("").suffix if compressed else path.suffix
    handle = tempfile.NamedTemporaryFile(prefix="tag-pipeline-lines-", suffix=suffix,
                                         delete=False)
    proc = Path(f"/proc/self/fd/{handle.fileno()}")
    try:
        if proc.exists():
            os.unlink(handle.name)
        for data in _line_chunks(path, chunk_bytes):
            handle.write(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        handle.flush()
        yield proc if proc.exists() else Path(handle.name)
    finally:
        handle.close()
        Path(handle.name).unlink(missing_ok=True)


def csv_header(path: Path, delimiter: str = ",", read: Path | None = None) -> list[str]:
    """The column names of a CSV file, from its header line alone.

    The readers are then given these columns and the dialect (``csv_columns_sql``), so DuckDB
    never sniffs the data lines: one badly quoted line anywhere in the file is quarantined as
    that line, instead of defeating the dialect detection of the whole file.

    ``read``: the file to read in its place (``unix_newlines``); messages name ``path``.

    Raises:
        ValueError: naming the file, when the header is empty, not UTF-8, not closed on its
            line, or repeats or leaves out a column name.
    """
    with (read or path).open("rb") as handle:
        raw = handle.readline(MAX_LINE_BYTES + 1)
    if b"\r" in raw:  # the header ends at \r\n or a lone \r too
        raw = raw[:raw.index(b"\r")]
    if len(raw) > MAX_LINE_BYTES:
        raise ValueError(f"file {path}: the header line is longer than {MAX_LINE_BYTES} bytes")
    try:
        line = raw.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise ValueError(f"file {path}: the header line (line 1) is not UTF-8 ({exc})") from exc
    if not line.strip():
        raise ValueError(f"file {path}: line 1 is empty; a CSV file needs a header line "
                         "naming its columns (or, for a file without one, a profile with "
                         "source.header: false and source.column_names)")
    try:
        names = next(csv.reader([line], delimiter=delimiter, quotechar='"', strict=True))
    except csv.Error as exc:
        raise ValueError(f"file {path}: the header line (line 1) is not valid CSV: {exc}"
                         ) from exc
    names = [n.strip() for n in names]
    blank = [i + 1 for i, n in enumerate(names) if not n]
    if blank:
        raise ValueError(f"file {path}: header column(s) {blank} have no name "
                         f"(header: {line[:200]!r})")
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            raise ValueError(f"file {path}: header names column {name!r} twice "
                             "(column names are compared without case)")
        seen.add(name.lower())
    return names


def csv_columns_sql(names: list[str]) -> str:
    """A DuckDB ``columns = {...}`` struct literal: every named column as VARCHAR."""
    def literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    return "{" + ", ".join(f"{literal(n)}: 'VARCHAR'" for n in names) + "}"


def ensure_ingest_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables if they do not exist yet."""
    for statement in _DDL:
        con.execute(statement)


def _relative(profile: CatalogProfile, path: Path) -> str:
    try:
        return path.resolve().relative_to(profile.root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def empty_lines(path: Path) -> list[int]:
    """The numbers of the file's empty lines, which DuckDB's reader skips without a trace (a
    line of spaces is read, and rejected or kept). ``path`` has one kind of line break
    (``unix_newlines``)."""
    with path.open("rb") as handle:
        return [number for number, line in enumerate(handle, 1)
                if line in (b"\n", b"\r\n")]


def line_map(con: duckdb.DuckDBPyConnection, n_accepted: int, first_line: int,
              skipped: list[int] | None = None) -> None:
    """Map the k-th accepted row to its line in the file, skipping rejected lines and the
    empty lines the reader skipped (``skipped``, see ``empty_lines``).

    Creates temp table ``_line_map(k, line)``. Assumes one record per line, which holds for
    JSON Lines and for CSV files without quoted line breaks.
    """
    skipped = [line for line in (skipped or []) if line >= first_line]
    con.execute("CREATE OR REPLACE TEMP TABLE _skipped AS "
                "SELECT unnest(?::BIGINT[]) AS line", [skipped])
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _line_map AS
        SELECT (row_number() OVER (ORDER BY l) - 1)::BIGINT AS k, l::BIGINT AS line
        FROM range(?, ? + ? + (SELECT count(*) FROM _rejects) + ?) t(l)
        WHERE l NOT IN (SELECT line FROM _rejects) AND l NOT IN (SELECT line FROM _skipped)
        """,
        [first_line, first_line, n_accepted, len(skipped)],
    )


def _collect_reader_rejects(con: duckdb.DuckDBPyConnection) -> None:
    """One reject row per line from DuckDB's reject store (it may list a line twice)."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _rejects AS
        SELECT line::BIGINT AS line,
               CASE WHEN bool_or(error_type = 'INVALID ENCODING') THEN 'invalid_encoding'
                    ELSE 'malformed_line' END AS error_type,
               string_agg(DISTINCT error_type || ': ' || error_message, '; ') AS error_message,
               any_value(csv_line) AS raw_line
        FROM _csv_rejects
        GROUP BY line
        """
    )


def _stage_csv(con: duckdb.DuckDBPyConnection, profile: CatalogProfile, path: Path,
               read: Path) -> None:
    names = None if profile.csv_header else list(profile.column_names)
    try:
        stage_csv(con, path, profile.delimiter_of(path), read, names=names)
    except ValueError as exc:
        raise ProfileError(f"profile {profile.name!r}: {exc}") from exc


def stage_csv(con: duckdb.DuckDBPyConnection, path: Path, delimiter: str = ",",
              read: Path | None = None, names: list[str] | None = None) -> None:
    """Read a CSV file into temp tables ``_src`` (its rows, every column VARCHAR, with their
    line in ``_line``) and ``_rejects`` (line, error_type, error_message, raw_line).

    ``read``: the file to read in its place, the same lines (``unix_newlines``).
    ``names``: the column names of a file without a header line (every line is data);
    None: line 1 names the columns.

    Raises:
        ValueError: the header line is unusable (see ``csv_header``).
    """
    header = names is None
    if header:
        names = csv_header(path, delimiter, read)
    con.execute("DROP TABLE IF EXISTS _csv_rejects")
    con.execute("DROP TABLE IF EXISTS _csv_scans")
    # The columns come from the header, the dialect from the profile: no sniffing.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _raw AS
        SELECT * FROM read_csv(?, header = ?, auto_detect = false,
                               columns = {csv_columns_sql(names)}, delim = ?, quote = '"',
                               escape = '"', store_rejects = true,
                               rejects_table = '_csv_rejects', rejects_scan = '_csv_scans',
                               max_line_size = ?, null_padding = false)
        """,
        [str(read or path), header, delimiter, MAX_LINE_BYTES],
    )
    _collect_reader_rejects(con)
    n_accepted = con.execute("SELECT count(*) FROM _raw").fetchone()[0]
    line_map(con, n_accepted, first_line=2 if header else 1,
              skipped=empty_lines(read or path))
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _src AS
        SELECT m.line AS _line, r.* FROM _raw r JOIN _line_map m ON m.k = r.rowid
        """
    )


def stage_jsonl(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Read a JSON Lines file into temp tables ``_json`` (line, text, kind) and ``_rejects``;
    ``stage_jsonl_columns`` then extracts the columns into ``_src``. ``path`` may be the copy
    ``unix_newlines`` gives (it names no file in its messages)."""
    con.execute("DROP TABLE IF EXISTS _csv_rejects")
    con.execute("DROP TABLE IF EXISTS _csv_scans")
    # Read each line as one text value ('\0' never occurs in valid UTF-8 text).
    con.execute(
        r"""
        CREATE OR REPLACE TEMP TABLE _lines AS
        SELECT line FROM read_csv(?, columns = {'line': 'VARCHAR'}, header = false,
                                  delim = '\0', quote = '', escape = '', auto_detect = false,
                                  store_rejects = true, rejects_table = '_csv_rejects',
                                  rejects_scan = '_csv_scans', max_line_size = ?,
                                  strict_mode = false)
        """,
        [str(path), MAX_LINE_BYTES],
    )
    _collect_reader_rejects(con)
    n_accepted = con.execute("SELECT count(*) FROM _lines").fetchone()[0]
    # read as one column, an empty line is a NULL row, not skipped (the CSV reader skips it)
    line_map(con, n_accepted, first_line=1)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _json AS
        SELECT m.line AS _line, l.line AS text,
               CASE WHEN json_valid(l.line) THEN json_type(l.line::JSON) END AS kind
        FROM _lines l JOIN _line_map m ON m.k = l.rowid
        WHERE l.line IS NOT NULL AND trim(l.line) <> ''
        """
    )
    con.execute(
        """
        INSERT INTO _rejects
        SELECT _line, 'malformed_line',
               CASE WHEN kind IS NULL THEN 'not valid JSON'
                    ELSE 'JSON value is ' || kind || ', expected an object' END,
               left(text, 2000)
        FROM _json WHERE kind IS DISTINCT FROM 'OBJECT'
        """
    )


def jsonl_keys(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT DISTINCT unnest(json_keys(text::JSON)) FROM _json WHERE kind = 'OBJECT'"
    ).fetchall()
    return {r[0] for r in rows}


def stage_jsonl_columns(con: duckdb.DuckDBPyConnection, columns: list[str]) -> None:
    selects = ", ".join(
        f"json_extract_string(text::JSON, ?) AS {quote_ident(c)}" for c in columns
    )
    paths = ["$." + '"' + c.replace('"', '\\"') + '"' for c in columns]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _src AS SELECT _line, {selects} "
        "FROM _json WHERE kind = 'OBJECT'",
        paths,
    )


def stage_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Read a Parquet file into temp table ``_src`` (with its row in ``_line``); an empty
    ``_rejects``."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _src AS
        SELECT * EXCLUDE (file_row_number), (file_row_number + 1)::BIGINT AS _line
        FROM read_parquet(?, file_row_number = true)
        """,
        [str(path)],
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _rejects (line BIGINT, error_type VARCHAR, "
        "error_message VARCHAR, raw_line VARCHAR)"
    )


def _check_columns(profile: CatalogProfile, path: Path, present: set[str],
                   fmt: str = "") -> None:
    missing = [c for c in profile.source_columns() if c not in present]
    if missing:
        column = missing[0]
        if fmt == "csv" and profile.csv_header:
            hint = ("; the profile reads line 1 of a CSV file as its header (the column "
                    "names): if the file has no header line, set source.header: false and "
                    "list the names in file order under source.column_names")
        elif fmt == "csv":
            hint = "; the names come from source.column_names, in file order"
        else:
            hint = ""
        raise ProfileError(
            f"profile {profile.name!r}: key '{profile.column_origin(column)}' names column "
            f"{column!r}, which file {path} does not have (columns: {sorted(present)}){hint}"
        )


def _insert_rows(con: duckdb.DuckDBPyConnection, profile: CatalogProfile, load_id: str,
                 source_file: str, loaded_at: datetime) -> int:
    q = quote_ident

    def col(name: str | None) -> str:
        return f"CAST({q(name)} AS VARCHAR)" if name else "NULL"

    params: list[object] = [load_id, source_file, loaded_at]
    if profile.id_from_line:
        id_expr = "(? || ':' || _line)"
        params.append(Path(source_file).stem)
    else:
        id_expr = col(profile.id_column)
    if profile.image_template:
        image_expr = f"replace(?, '{{id}}', {id_expr})"
        params.append(profile.image_template)
        if profile.id_from_line:
            params.append(Path(source_file).stem)
    else:
        image_expr = col(profile.image_column)
    keys: list[str] = []
    values: list[str] = []
    value_params: list[str] = []
    for spec in profile.tags:
        if spec.shape == "lexicon":
            continue
        keys.append(spec.field_key)
        if spec.shape == "levels":
            parts = ", ".join(f"coalesce({col(c)}, '')" for c in spec.columns)
            values.append(f"concat_ws(chr(31), {parts})")
        elif spec.shape == "plain" and spec.value_map:
            whens = " ".join("WHEN ? THEN ?" for _ in spec.value_map)
            values.append(f"CASE trim({col(spec.columns[0])}) {whens} "
                          f"ELSE {col(spec.columns[0])} END")
            value_params.extend(x for pair in spec.value_map.items() for x in pair)
        else:
            values.append(col(spec.columns[0]))
    for feature in profile.features:
        # the feature columns' raw values travel with the tag fields (feature:<name>)
        keys.append(feature.field_key)
        values.append(col(feature.column))
    if keys:
        tag_expr = f"map(?::VARCHAR[], [{', '.join(values)}]::VARCHAR[])"
        params.append(keys)
        params.extend(value_params)
    else:
        tag_expr = "map([]::VARCHAR[], []::VARCHAR[])"
    # CAST(... AS VARCHAR) keeps Parquet's typed columns uniform with CSV and JSON text.
    sql = f"""
        INSERT INTO raw_products
        SELECT ?, ?, _line, ?,
               {id_expr}, {col(profile.title_column)},
               {col(profile.description_column)}, {image_expr},
               {col(profile.price_column)}, {col(profile.updated_at_column)}, {tag_expr}
        FROM _src ORDER BY _line
    """
    # Parameters are positional, in the order their placeholders appear in the statement.
    con.execute(sql, params)
    return con.execute("SELECT count(*) FROM _src").fetchone()[0]


def _load_file(con: duckdb.DuckDBPyConnection, profile: CatalogProfile, path: Path,
               load: FileLoad, loaded_at: datetime, run_id: str | None) -> None:
    fmt = profile.format_of(path)
    load_id = uuid.uuid4().hex
    # Stage outside the transaction: the line mapping relies on the temp tables' row ids,
    # which are only positional once committed. Temp tables are private to this connection.
    try:
        if fmt == "csv":
            with unix_newlines(path) as read:
                _stage_csv(con, profile, path, read)
            present = {r[0] for r in con.execute("DESCRIBE _raw").fetchall()}
        elif fmt == "jsonl":
            with unix_newlines(path) as read:
                stage_jsonl(con, read)
            present = jsonl_keys(con)
        else:
            stage_parquet(con, path)
            present = {r[0] for r in con.execute("DESCRIBE _src").fetchall()} - {"_line"}
        _check_columns(profile, path, present, fmt)
        if fmt == "jsonl":
            stage_jsonl_columns(con, profile.source_columns())
    except duckdb.Error as exc:
        raise ProfileError(
            f"profile {profile.name!r}: file {path} could not be read as {fmt}: {exc}"
        ) from exc
    with transaction(con, f"loading {path}"):
        load.rows_loaded = _insert_rows(con, profile, load_id, load.source_file, loaded_at)
        con.execute(
            """
            INSERT INTO raw_product_rejects
            SELECT ?, ?, line, ?, error_type, error_message, raw_line FROM _rejects
            """,
            [load_id, load.source_file, loaded_at],
        )
        load.rows_rejected = con.execute("SELECT count(*) FROM _rejects").fetchone()[0]
        con.execute(
            "INSERT INTO ingest_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [load_id, profile.name, load.source_file, load.content_hash, path.stat().st_size,
             fmt, load.status, load.rows_loaded, load.rows_rejected, loaded_at, run_id],
        )


def ingest_catalog(con: duckdb.DuckDBPyConnection, profile: CatalogProfile,
                   loaded_at: datetime, run_id: str | None = None,
                   on_file: Callable[[int, int, FileLoad], None] | None = None
                   ) -> IngestReport:
    """Load every landing file of ``profile`` whose content has not been loaded before.

    A file whose path and content were loaded before is skipped ('unchanged'); one whose
    content was loaded under another path is skipped too ('duplicate_content'); a file whose
    path is known but whose content changed is loaded again ('changed'), its rows appended.

    Args:
        con: an open DuckDB connection to the warehouse.
        profile: the catalog profile.
        loaded_at: the load time stamped on every row.
        run_id: the orchestrator's run id, kept in ``ingest_files``.
        on_file: optional callable ``(index, total, FileLoad)`` for progress reports.
    """
    ensure_ingest_tables(con)
    report = IngestReport()
    files = profile.matching_files()
    if not files:
        raise ProfileError(
            f"profile {profile.name!r}: key 'source.files' {list(profile.files)} matches no "
            f"file under {profile.root}"
        )
    for index, path in enumerate(files, start=1):
        source_file = _relative(profile, path)
        content_hash = file_sha256(path)
        known = con.execute(
            "SELECT source_file FROM ingest_files WHERE profile = ? AND content_hash = ? "
            "ORDER BY (source_file = ?) DESC LIMIT 1",
            [profile.name, content_hash, source_file],
        ).fetchone()
        load = FileLoad(source_file=source_file, status="new", content_hash=content_hash)
        if known is not None:
            load.status = "unchanged" if known[0] == source_file else "duplicate_content"
            load.detail = "" if known[0] == source_file else f"same content as {known[0]}"
        else:
            seen_path = con.execute(
                "SELECT count(*) FROM ingest_files WHERE profile = ? AND source_file = ?",
                [profile.name, source_file],
            ).fetchone()[0]
            load.status = "changed" if seen_path else "new"
            _load_file(con, profile, path, load, loaded_at, run_id)
        report.files.append(load)
        if on_file is not None:
            on_file(index, len(files), load)
    return report
