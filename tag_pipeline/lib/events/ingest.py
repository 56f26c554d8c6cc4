"""Load sales and feedback event files into DuckDB, once per file content.

Landing formats (``*.csv`` with a header row, ``*.jsonl`` with one JSON object per line, or
``*.parquet``; files are found recursively under the landing folder and loaded in path order):

sales, one order line per row:
    ``order_id``     the order; an order line is identified by (order_id, product_id)
    ``product_id``   required, not blank
    ``quantity``     a positive whole number (``2`` and ``2.0`` are accepted, ``2.5`` is not)
    ``price``        the unit price, a plain non-negative number (no currency symbol)
    ``timestamp``    ISO 8601 (``2026-11-11 20:15:00``, ``2026-11-11T20:15:00Z``); a time
                     without an offset is taken as UTC, one with an offset is converted to UTC
    ``user_id``      optional column, may be empty; pseudonymised before it is stored

feedback, one user action on a product's tag per row:
    ``product_id``   required, not blank
    ``tag``          required, not blank
    ``action``       ``accept | reject | add | withdraw`` (case and spaces ignored)
    ``user_id``      may be empty; pseudonymised before it is stored
    ``timestamp``    as for sales
    ``note``         free text, may be empty
    ``tag_type``     optional column

A ``withdraw`` cancels the latest earlier action (by timestamp) on the same (product_id, tag);
a withdraw with nothing before it changes nothing. The raw table keeps every action as
delivered; applying withdrawals is the reader's job. Columns beyond these are ignored.

Each new or changed file is read by DuckDB (CSV reader with its reject store, JSON Lines read
one line per value and parsed in SQL, Parquet) and validated in SQL; rows never pass through
Python. Every data line ends up either in ``raw_sales``/``raw_feedback`` or in
``event_rejects`` with exactly one reason, so per file rows_loaded + rows_rejected equals its
data lines (blank lines are not data lines). Reasons, checked in this order:

    malformed_line     the reader could not split the line (wrong column count, bad quoting,
                       not a JSON object)
    invalid_encoding   the line is not UTF-8
    missing_product_id product_id empty
    bad_quantity       sales: quantity not a positive whole number
    bad_price          sales: price not a non-negative number
    missing_tag        feedback: tag empty
    unknown_action     feedback: action not one of the four
    bad_timestamp      timestamp missing or not ISO 8601

A missing column is not a row problem: the whole file is refused with an error naming the file
and the column, and nothing of it is stored.

Raw user ids never reach a table. The staged rows carry only a 128-bit md5 digest of the id
salted with a random nonce that lives in Python memory for one ``ingest_events`` call; a second
read of the file sends each distinct id not met earlier in that call once through the keyed
pseudonym function (see ``pseudonym.py``) and keeps (digest, pseudonym) pairs, and the insert
joins the pseudonym in. The staging tables are dropped after each file, the pairs after the
call. DuckDB's reject store, which holds the text of lines the reader could not split, is
dropped as soon as it is read, and such a line is kept without its text (its detail is the
reader's error), since that text may hold a user id. A row that fails validation keeps its
fields as a JSON object in ``raw_line``, with the pseudonym (``user_key``) in place of the id.

Duplicate order lines (an (order_id, product_id) loaded again, e.g. a corrected re-delivery)
are appended like any other row: the raw tables are append-only. The behaviour models count
each order line once, keeping the copy from the latest load.

Line numbers assume one record per line: JSON Lines always, CSV files without quoted line
breaks or blank lines in the middle (DuckDB's reader skips those).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import duckdb

from tag_pipeline.lib.catalog.ingest import (
    MAX_LINE_BYTES,
    FileLoad,
    IngestReport,
    csv_columns_sql,
    csv_header,
    empty_lines,
    line_map,
    unix_newlines,
)
from tag_pipeline.lib.events.pseudonym import (
    register_pseudonym_function,
    unregister_pseudonym_function,
)
from tag_pipeline.lib.hashing import file_sha256
from tag_pipeline.lib.sql import quote_ident, transaction
from tag_pipeline.lib.vocabulary import FEEDBACK_ACTIONS

EventKind = Literal["sales", "feedback"]

# Required and optional landing columns per kind; user_id is pseudonymised, never stored.
COLUMNS: dict[str, tuple[str, ...]] = {
    "sales": ("order_id", "product_id", "quantity", "price", "timestamp"),
    "feedback": ("product_id", "tag", "action", "user_id", "timestamp", "note"),
}
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "sales": ("user_id",),
    "feedback": ("tag_type",),
}
REJECT_REASONS = (
    "malformed_line", "invalid_encoding", "missing_product_id", "bad_quantity", "bad_price",
    "missing_tag", "unknown_action", "bad_timestamp",
)
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}

# The key-bearing function lives on the connection only while an ingest runs.
_UDF = "_events_pseudonym"

_DDL = (
    """
    CREATE TABLE IF NOT EXISTS event_files (
        kind VARCHAR NOT NULL,
        load_id VARCHAR PRIMARY KEY,
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
    CREATE TABLE IF NOT EXISTS raw_sales (
        load_id VARCHAR NOT NULL,
        source_file VARCHAR NOT NULL,
        source_line BIGINT NOT NULL,
        loaded_at TIMESTAMP NOT NULL,
        order_id VARCHAR,
        product_id VARCHAR NOT NULL,
        quantity BIGINT NOT NULL,
        price DOUBLE NOT NULL,
        ordered_at TIMESTAMP NOT NULL,
        user_key VARCHAR
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS raw_feedback (
        load_id VARCHAR NOT NULL,
        source_file VARCHAR NOT NULL,
        source_line BIGINT NOT NULL,
        loaded_at TIMESTAMP NOT NULL,
        product_id VARCHAR NOT NULL,
        tag VARCHAR NOT NULL,
        tag_type VARCHAR,
        action VARCHAR NOT NULL,
        user_key VARCHAR,
        created_at TIMESTAMP NOT NULL,
        note VARCHAR
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS event_rejects (
        kind VARCHAR NOT NULL,
        load_id VARCHAR NOT NULL,
        source_file VARCHAR NOT NULL,
        source_line BIGINT NOT NULL,
        loaded_at TIMESTAMP NOT NULL,
        reason VARCHAR NOT NULL,
        detail VARCHAR,
        raw_line VARCHAR
    )
    """,
)

class EventIngestError(ValueError):
    """An event file cannot be loaded (unreadable, or a column is missing)."""


@dataclass
class EventIngestReport(IngestReport):
    """The outcome of one ingest over an event kind's landing folder."""

    kind: str = "sales"


def ensure_event_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the event tables if they do not exist yet."""
    for statement in _DDL:
        con.execute(statement)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)


def _columns_expr(kind: str, present: set[str], cast: bool) -> str:
    """The landing columns as VARCHAR (NULL when an optional one is absent), user_id apart."""
    parts = []
    for column in COLUMNS[kind] + OPTIONAL_COLUMNS[kind]:
        if column == "user_id":
            continue
        if column in present:
            parts.append(f"CAST({quote_ident(column)} AS VARCHAR) AS {quote_ident(column)}"
                         if cast else quote_ident(column))
        else:
            parts.append(f"NULL::VARCHAR AS {quote_ident(column)}")
    return ", ".join(parts)


def _stage_rows(con: duckdb.DuckDBPyConnection, kind: str, rows_sql: str,
                params: list[object], users_sql: str | None, users_params: list[object],
                nonce: str) -> None:
    """Stage ``rows_sql`` (text columns and a raw ``user_id``) as ``_ev_stage``, validated, and
    add the pseudonyms of its new users to ``_ev_users``; no raw user id is stored.

    The rows keep the reader's order (so a row's ``rowid`` is its position among the lines the
    reader accepted) because the staging query joins nothing: the user id is replaced by a
    128-bit digest salted with ``nonce``, a random value that lives only in Python memory for
    one ingest. A second query reads the file's distinct user ids and sends each id the ingest
    has not met before (in an earlier file) once through the keyed pseudonym function (per-row
    Python calls would dominate the load), keeping (digest, pseudonym) pairs to join at insert
    time.
    """
    inner = (f"SELECT * EXCLUDE (user_id), md5_number(?::VARCHAR || user_id) AS _uh "
             f"FROM ({rows_sql})")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _ev_stage AS {_validated(kind, inner)}",
                [nonce, *params])
    if users_sql is None:
        return
    con.execute(
        f"""
        INSERT INTO _ev_users
        SELECT n._uh, {_UDF}(n.user_id)
        FROM (SELECT md5_number(?::VARCHAR || user_id) AS _uh, user_id
              FROM (SELECT DISTINCT user_id FROM ({users_sql}) WHERE user_id IS NOT NULL)) n
        ANTI JOIN _ev_users u ON u._uh = n._uh
        """,
        [nonce, *users_params],
    )


def _reader_rejects(con: duckdb.DuckDBPyConnection) -> None:
    """One reject per line from DuckDB's reject store, without the line's text."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _rejects AS
        SELECT line::BIGINT AS line,
               CASE WHEN bool_or(error_type = 'INVALID ENCODING') THEN 'invalid_encoding'
                    ELSE 'malformed_line' END AS reason,
               -- the query may scan the file twice; each scan reports the line
               arg_min(error_type || ': ' || error_message, scan_id) AS detail,
               NULL::VARCHAR AS raw_line
        FROM _ev_csv_rejects
        GROUP BY line
        """
    )
    # The reject store keeps each bad line's text, which may hold a raw user id.
    con.execute("DROP TABLE IF EXISTS _ev_csv_rejects")
    con.execute("DROP TABLE IF EXISTS _ev_csv_scans")


def _number_lines(con: duckdb.DuckDBPyConnection, first_line: int, skipped: list[int],
                  view: str = "_ev_src") -> None:
    """View ``view``: the staged rows with their line in the file (a row's ``rowid`` is its
    index among the lines the reader accepted, in file order; ``skipped``: the empty lines
    the reader passed over, ``empty_lines``)."""
    n_rejects = con.execute("SELECT count(*) FROM _rejects").fetchone()[0]
    if n_rejects == 0 and not [line for line in skipped if line >= first_line]:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {view} AS "
            f"SELECT rowid + {int(first_line)} AS _line, * FROM _ev_stage"
        )
        return
    n_accepted = con.execute("SELECT count(*) FROM _ev_stage").fetchone()[0]
    line_map(con, n_accepted, first_line=first_line, skipped=skipped)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT m.line AS _line, s.* "
        "FROM _ev_stage s JOIN _line_map m ON m.k = s.rowid"
    )


def _csv_options(names: list[str]) -> str:
    # The columns come from the header line and the dialect is fixed: DuckDB never sniffs the
    # data lines, so one badly quoted line is quarantined as itself wherever it sits.
    return (f"header = true, auto_detect = false, columns = {csv_columns_sql(names)}, "
            "delim = ',', quote = '\"', escape = '\"', max_line_size = ?, "
            "null_padding = false")


def _stage_csv(con: duckdb.DuckDBPyConnection, kind: str, path: Path,
               nonce: str, read: Path) -> set[str]:
    try:
        names = csv_header(path, read=read)
    except ValueError as exc:
        raise EventIngestError(f"{kind} {exc}") from exc
    present = set(names)
    _check_columns(kind, path, present)
    user = "user_id" if "user_id" in present else "NULL::VARCHAR AS user_id"
    reader = f"read_csv(?, {_csv_options(names)}"
    rows_sql = f"""
        SELECT {_columns_expr(kind, present, cast=False)}, {user}
        FROM {reader}, store_rejects = true, rejects_table = '_ev_csv_rejects',
             rejects_scan = '_ev_csv_scans')
    """
    con.execute("DROP TABLE IF EXISTS _ev_csv_rejects")
    con.execute("DROP TABLE IF EXISTS _ev_csv_scans")
    params = [str(read), MAX_LINE_BYTES]
    users_sql = (f"SELECT user_id FROM {reader}, ignore_errors = true)"
                 if "user_id" in present else None)
    _stage_rows(con, kind, rows_sql, params, users_sql, params, nonce)
    _reader_rejects(con)
    _number_lines(con, first_line=2, skipped=empty_lines(read))
    return present


def _stage_jsonl(con: duckdb.DuckDBPyConnection, kind: str, path: Path,
                 nonce: str, read: Path) -> set[str]:
    wanted = COLUMNS[kind] + OPTIONAL_COLUMNS[kind]
    fields = ", ".join(
        f"json_extract_string(_j, {_json_path(c)}) AS {quote_ident(c)}" for c in wanted
    )
    # Each line is read as one text value ('\0' never occurs in valid UTF-8 text) and parsed
    # in the same statement, so the raw line (and its user id) is never stored.
    reader = r"""read_csv(?, columns = {'line': 'VARCHAR'}, header = false, delim = '\0',
                          quote = '', escape = '', auto_detect = false, max_line_size = ?,
                          strict_mode = false"""
    rows_sql = f"""
        WITH l AS (
            SELECT line
            FROM {reader}, store_rejects = true, rejects_table = '_ev_csv_rejects',
                 rejects_scan = '_ev_csv_scans')
        ),
        k AS (
            SELECT coalesce(trim(line), '') = '' AS _blank,
                   CASE WHEN json_valid(line) THEN json_type(line::JSON) END AS _kind,
                   line
            FROM l
        ),
        j AS (
            SELECT _blank, _kind, CASE WHEN _kind = 'OBJECT' THEN line::JSON END AS _j
            FROM k
        )
        SELECT _blank, _kind, json_keys(_j) AS _keys, {fields} FROM j
    """
    users_sql = f"""
        SELECT json_extract_string(line::JSON, '$.user_id') AS user_id
        FROM (SELECT line FROM {reader}, ignore_errors = true)
              WHERE json_valid(line) AND json_type(line::JSON) = 'OBJECT')
    """
    con.execute("DROP TABLE IF EXISTS _ev_csv_rejects")
    con.execute("DROP TABLE IF EXISTS _ev_csv_scans")
    params = [str(read), MAX_LINE_BYTES]
    _stage_rows(con, kind, rows_sql, params, users_sql, params, nonce)
    present = {r[0] for r in con.execute(
        "SELECT DISTINCT unnest(_keys) FROM _ev_stage WHERE _kind = 'OBJECT'").fetchall()}
    _check_columns(kind, path, present)
    _reader_rejects(con)
    # read as one column, an empty line is a NULL row, not skipped (the CSV reader skips it)
    _number_lines(con, first_line=1, skipped=[], view="_ev_lines")
    con.execute(
        """
        INSERT INTO _rejects
        SELECT _line, 'malformed_line',
               CASE WHEN _kind IS NULL THEN 'not valid JSON'
                    ELSE 'JSON value is ' || _kind || ', expected an object' END,
               NULL
        FROM _ev_lines WHERE NOT _blank AND _kind IS DISTINCT FROM 'OBJECT'
        """
    )
    con.execute(
        "CREATE OR REPLACE TEMP VIEW _ev_src AS SELECT * EXCLUDE (_blank, _kind, _keys) "
        "FROM _ev_lines WHERE _kind = 'OBJECT'"
    )
    return present


def _stage_parquet(con: duckdb.DuckDBPyConnection, kind: str, path: Path,
                   nonce: str) -> set[str]:
    described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    present = {r[0] for r in described}
    _check_columns(kind, path, present)
    has_user = "user_id" in present
    user = "CAST(user_id AS VARCHAR)" if has_user else "NULL::VARCHAR"
    rows_sql = f"""
        SELECT (file_row_number + 1)::BIGINT AS _line,
               {_columns_expr(kind, present, cast=True)}, {user} AS user_id
        FROM read_parquet(?, file_row_number = true)
    """
    users_sql = f"SELECT {user} AS user_id FROM read_parquet(?)" if has_user else None
    _stage_rows(con, kind, rows_sql, [str(path)], users_sql, [str(path)], nonce)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _rejects (line BIGINT, reason VARCHAR, detail VARCHAR, "
        "raw_line VARCHAR)"
    )
    con.execute("CREATE OR REPLACE TEMP VIEW _ev_src AS SELECT * FROM _ev_stage")
    return present


def _json_path(column: str) -> str:
    return "'$.\"" + column.replace("'", "''").replace('"', '\\"') + "\"'"


def _check_columns(kind: str, path: Path, present: set[str]) -> None:
    missing = [c for c in COLUMNS[kind] if c not in present]
    if missing:
        raise EventIngestError(
            f"{kind} file {path} has no column {missing[0]!r} (missing: {missing}; "
            f"columns: {sorted(present)}; required: {list(COLUMNS[kind])})"
        )


def _quoted(column: str) -> str:
    """SQL text showing a value in a reject detail."""
    return f"coalesce('''' || left({column}, 200) || '''', 'empty')"


def _validated(kind: str, rows_sql: str) -> str:
    """``rows_sql`` (text columns) with typed ``_``-prefixed values, the one reject ``reason``
    (NULL when valid), its ``detail`` and, for a rejected row, ``_fields`` (its text values,
    kept for ``raw_line``). Text columns are dropped so the staged table holds each value
    once."""
    # ISO 8601 text to a UTC TIMESTAMP: the common form first (cheap), then the general cast,
    # through TIMESTAMPTZ when an offset follows the date part.
    ts = """coalesce(try_strptime(trim("timestamp"), '%Y-%m-%d %H:%M:%S'),
                     CASE WHEN regexp_matches(substr(trim("timestamp"), 11), '[Zz+-]')
                          THEN timezone('UTC', TRY_CAST(trim("timestamp") AS TIMESTAMPTZ))
                          ELSE TRY_CAST(trim("timestamp") AS TIMESTAMP) END)"""
    bad_ts = f"""WHEN 'bad_timestamp' THEN 'timestamp ' || {_quoted('"timestamp"')}
                                      || ' is not an ISO 8601 time'"""
    if kind == "sales":
        typed = f"""nullif(trim(order_id), '') AS _order_id,
                    nullif(trim(product_id), '') AS _product_id,
                    TRY_CAST(trim(quantity) AS DOUBLE) AS _q,
                    TRY_CAST(trim(price) AS DOUBLE) AS _p, {ts} AS _t"""
        reason = """CASE WHEN _product_id IS NULL THEN 'missing_product_id'
                         WHEN _q IS NULL OR isnan(_q) OR _q < 1 OR _q >= 9.2e18
                              OR _q <> floor(_q) THEN 'bad_quantity'
                         WHEN _p IS NULL OR isnan(_p) OR isinf(_p) OR _p < 0 THEN 'bad_price'
                         WHEN _t IS NULL THEN 'bad_timestamp' END"""
        detail = f"""CASE reason WHEN 'missing_product_id' THEN 'product_id is empty'
                         WHEN 'bad_quantity' THEN 'quantity ' || {_quoted('quantity')}
                              || ' is not a positive whole number'
                         WHEN 'bad_price' THEN 'price ' || {_quoted('price')}
                              || ' is not a non-negative number'
                         {bad_ts} END"""
    else:
        actions = ", ".join(f"'{a}'" for a in FEEDBACK_ACTIONS)
        typed = f"""nullif(trim(product_id), '') AS _product_id,
                    nullif(trim(tag), '') AS _tag, nullif(trim(tag_type), '') AS _tag_type,
                    lower(trim(action)) AS _action, note AS _note, {ts} AS _t"""
        reason = f"""CASE WHEN _product_id IS NULL THEN 'missing_product_id'
                          WHEN _tag IS NULL THEN 'missing_tag'
                          WHEN _action IS NULL OR _action NOT IN ({actions})
                               THEN 'unknown_action'
                          WHEN _t IS NULL THEN 'bad_timestamp' END"""
        detail = f"""CASE reason WHEN 'missing_product_id' THEN 'product_id is empty'
                         WHEN 'missing_tag' THEN 'tag is empty'
                         WHEN 'unknown_action' THEN 'action ' || {_quoted('action')}
                              || ' is not one of {" | ".join(FEEDBACK_ACTIONS)}'
                         {bad_ts} END"""
    text = [c for c in COLUMNS[kind] + OPTIONAL_COLUMNS[kind] if c != "user_id"]
    packed = ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in text)
    dropped = ", ".join(quote_ident(c) for c in text)
    return f"""
        SELECT * EXCLUDE ({dropped}),
               CASE WHEN reason IS NOT NULL THEN struct_pack({packed}) END AS _fields
        FROM (
            SELECT *, {detail} AS detail
            FROM (SELECT *, {reason} AS reason FROM (SELECT *, {typed} FROM ({rows_sql})))
        )
    """


def _insert_rows(con: duckdb.DuckDBPyConnection, kind: str, params: list[object]) -> int:
    """Append the valid rows; stage the invalid ones in ``_rejects``."""
    # A rejected row keeps its fields as JSON, the pseudonym in place of the user id.
    con.execute(
        """
        INSERT INTO _rejects
        SELECT s._line, s.reason, s.detail,
               to_json(struct_insert(s._fields, user_key := u.user_key))::VARCHAR
        FROM _ev_src s LEFT JOIN _ev_users u ON u._uh = s._uh
        WHERE s.reason IS NOT NULL
        """
    )
    if kind == "sales":
        sql = """
            INSERT INTO raw_sales
            SELECT ?, ?, s._line, ?, s._order_id, s._product_id, s._q::BIGINT, s._p, s._t,
                   u.user_key
            FROM _ev_src s LEFT JOIN _ev_users u ON u._uh = s._uh
            WHERE s.reason IS NULL
        """
    else:
        sql = """
            INSERT INTO raw_feedback
            SELECT ?, ?, s._line, ?, s._product_id, s._tag, s._tag_type, s._action,
                   u.user_key, s._t, s._note
            FROM _ev_src s LEFT JOIN _ev_users u ON u._uh = s._uh
            WHERE s.reason IS NULL
        """
    return int(con.execute(sql, params).fetchone()[0])


def _drop_staging(con: duckdb.DuckDBPyConnection) -> None:
    for view in ("_ev_src", "_ev_lines"):
        con.execute(f"DROP VIEW IF EXISTS {view}")
    for table in ("_ev_stage", "_rejects", "_line_map", "_skipped", "_ev_csv_rejects",
                  "_ev_csv_scans"):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _load_file(con: duckdb.DuckDBPyConnection, kind: str, path: Path, load: FileLoad,
               loaded_at: datetime, run_id: str | None, nonce: str) -> None:
    fmt = FORMATS[path.suffix.lower()]
    load_id = uuid.uuid4().hex
    stage = {"csv": _stage_csv, "jsonl": _stage_jsonl, "parquet": _stage_parquet}[fmt]
    try:
        try:
            if fmt == "parquet":
                stage(con, kind, path, nonce)
            else:  # a file that mixes line breaks is read through a copy with one kind
                with unix_newlines(path) as read:
                    stage(con, kind, path, nonce, read)
        except duckdb.Error as exc:
            raise EventIngestError(f"{kind} file {path} could not be read as {fmt}: {exc}") \
                from exc
        with transaction(con, f"loading {kind} file {path}"):
            load.rows_loaded = _insert_rows(con, kind, [load_id, load.source_file, loaded_at])
            load.rows_rejected = int(con.execute(
                """
                INSERT INTO event_rejects
                SELECT ?, ?, ?, line, ?, reason, detail, raw_line FROM _rejects ORDER BY line
                """,
                [kind, load_id, load.source_file, loaded_at],
            ).fetchone()[0])
            con.execute(
                "INSERT INTO event_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [kind, load_id, load.source_file, load.content_hash, path.stat().st_size, fmt,
                 load.status, load.rows_loaded, load.rows_rejected, loaded_at, run_id],
            )
    finally:
        _drop_staging(con)


def ingest_events(con: duckdb.DuckDBPyConnection, kind: EventKind, folder: Path, *,
                  key: bytes, loaded_at: datetime, run_id: str | None = None,
                  on_file: Callable[[int, int, FileLoad], None] | None = None
                  ) -> EventIngestReport:
    """Load every event file under ``folder`` whose content was not loaded before for ``kind``.

    A file whose path and content were loaded before is skipped ('unchanged'); one whose
    content was loaded under another path is skipped too ('duplicate_content'); a known path
    with new content is loaded again ('changed'), its rows appended. Each file, its rows, its
    rejects and its ``event_files`` row are written in one transaction.

    Args:
        con: An open DuckDB connection to the warehouse.
        kind: ``"sales"`` or ``"feedback"``; see the module docstring for the columns.
        folder: The landing folder, searched recursively for .csv, .jsonl and .parquet files.
        key: The pseudonymisation key (see ``pseudonym.load_key``).
        loaded_at: The load time stamped on every row.
        run_id: The orchestrator's run id, kept in ``event_files``.
        on_file: Optional callable ``(index, total, FileLoad)`` for progress reports.

    Raises:
        EventIngestError: The kind is unknown, the folder does not exist, or a file lacks a
            column or cannot be read (files before it stay loaded).
    """
    if kind not in COLUMNS:
        raise EventIngestError(f"event kind {kind!r} is not one of {sorted(COLUMNS)}")
    if not folder.is_dir():
        raise EventIngestError(f"{kind} landing folder {folder} does not exist")
    ensure_event_tables(con)
    report = EventIngestReport(kind=kind)
    files = _files(folder)
    register_pseudonym_function(con, key, name=_UDF)
    # Pseudonyms met in this ingest, by salted digest: an id in several files is hashed once.
    nonce = secrets.token_hex(16)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _ev_users (_uh UHUGEINT, user_key VARCHAR)")
        for index, path in enumerate(files, start=1):
            source_file = path.relative_to(folder).as_posix()
            content_hash = file_sha256(path)
            known = con.execute(
                "SELECT source_file FROM event_files WHERE kind = ? AND content_hash = ? "
                "ORDER BY (source_file = ?) DESC LIMIT 1",
                [kind, content_hash, source_file],
            ).fetchone()
            load = FileLoad(source_file=source_file, status="new", content_hash=content_hash)
            if known is not None:
                same_path = known[0] == source_file
                load.status = "unchanged" if same_path else "duplicate_content"
                load.detail = "" if same_path else f"same content as {known[0]}"
            else:
                seen_path = con.execute(
                    "SELECT count(*) FROM event_files WHERE kind = ? AND source_file = ?",
                    [kind, source_file],
                ).fetchone()[0]
                load.status = "changed" if seen_path else "new"
                _load_file(con, kind, path, load, loaded_at, run_id, nonce)
            report.files.append(load)
            if on_file is not None:
                on_file(index, len(files), load)
    finally:
        con.execute("DROP TABLE IF EXISTS _ev_users")
        unregister_pseudonym_function(con, _UDF)
    return report


@dataclass(frozen=True)
class UnknownProducts:
    """Event rows of one run's loads whose product_id is not in ``cleaned_products``."""

    rows: int
    products: int
    examples: tuple[str, ...]  # a few of the product ids, sorted

    def reason(self, kind: EventKind) -> str:
        """What happens to such rows, for the run's log and metadata."""
        effect = ("count toward no product's tags" if kind == "sales" else
                  "are never applied (listed in feedback_rejects)")
        return (f"{self.rows:,} {kind} row(s) name {self.products:,} product(s) not in "
                f"cleaned_products (e.g. {', '.join(map(repr, self.examples))}); they "
                f"{effect}")


def unknown_products(con: duckdb.DuckDBPyConnection, kind: EventKind, run_id: str | None,
                     examples: int = 5) -> UnknownProducts:
    """The rows that the loads of run ``run_id`` (``event_files.run_id``) brought for
    products the catalog does not have; all zero when there is no ``cleaned_products`` yet."""
    if kind not in COLUMNS:
        raise EventIngestError(f"unknown event kind {kind!r}; expected one of {list(COLUMNS)}")
    has_catalog = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'cleaned_products'"
    ).fetchone()[0]
    if not has_catalog:
        return UnknownProducts(0, 0, ())
    rows, products, sample = con.execute(
        f"""
        WITH unknown AS (
            SELECT e.product_id
            FROM raw_{kind} AS e
            SEMI JOIN event_files AS f
                ON f.load_id = e.load_id AND f.kind = ? AND f.run_id IS NOT DISTINCT FROM ?
            ANTI JOIN cleaned_products AS c ON c.product_id = e.product_id
        )
        SELECT count(*), count(DISTINCT product_id),
               list(DISTINCT product_id ORDER BY product_id)[1:?]
        FROM unknown
        """,
        [kind, run_id, examples],
    ).fetchone()
    return UnknownProducts(int(rows), int(products), tuple(sample or ()))
