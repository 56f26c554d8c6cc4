"""Keyed pseudonyms for user ids, so raw user ids never reach the warehouse.

A pseudonym is ``"u_"`` + the first 32 hex characters (128 bits) of HMAC-SHA256(key, user id
as UTF-8). The same id gives the same pseudonym under one key (so a user's events can still be
joined), a different key gives unrelated pseudonyms, and without the key a pseudonym cannot be
traced back to the id. The key lives only in a Python closure: it never appears in SQL text,
a table or a log message.
"""

from __future__ import annotations

import hashlib

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

PREFIX = "u_"
HEX_CHARS = 32
MIN_KEY_BYTES = 16


class PseudonymKeyError(ValueError):
    """The pseudonymisation key is missing or too weak."""


def load_key(value: str | None, *, setting: str) -> bytes:
    """Validate a pseudonymisation key given as text and return its UTF-8 bytes.

    Args:
        value: The key as read from the setting (``None`` when unset).
        setting: The setting's name, e.g. ``TAG_PIPELINE_PSEUDONYM_KEY``, named in errors.

    Raises:
        PseudonymKeyError: The key is unset, blank or shorter than 16 bytes. The message names
            the setting and never shows the value.
    """
    if value is None or not value.strip():
        raise PseudonymKeyError(
            f"setting {setting} is not set: give a secret of at least {MIN_KEY_BYTES} bytes"
        )
    key = value.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"setting {setting} is too short: {len(key)} bytes, at least {MIN_KEY_BYTES} "
            "needed (the value is not shown)"
        )
    return key


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"pseudonymisation key must be at least {MIN_KEY_BYTES} bytes (use load_key)"
        )


def _pseudonymiser(key: bytes):
    """A function of an Arrow string array; the key stays in its closure."""
    _check_key(key)
    # HMAC (RFC 2104) with the key's inner and outer pads hashed once: per value, two SHA-256
    # updates of copied states, about half the cost of hmac.new() per value.
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def one(value: str) -> str:
        digest = inner.copy()
        digest.update(value.encode("utf-8"))
        mac = outer.copy()
        mac.update(digest.digest())
        return PREFIX + mac.hexdigest()[:HEX_CHARS]

    def apply(values: pa.Array | pa.ChunkedArray) -> pa.Array:
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if not pa.types.is_string(values.type):
            values = values.cast(pa.string())
        # Hash each distinct id once; nulls have a null index, so they stay null.
        encoded = pc.dictionary_encode(values)
        hashed = pa.array([one(v) for v in encoded.dictionary.to_pylist()], pa.string())
        return pc.take(hashed, encoded.indices)

    return apply


def pseudonymise(values: pa.Array | pa.ChunkedArray | list[str | None], key: bytes) -> pa.Array:
    """Pseudonymise user ids: ``"u_"`` + 32 hex chars of HMAC-SHA256(key, id); null stays null.

    Args:
        values: The raw user ids.
        key: The secret key (at least 16 bytes, see ``load_key``).

    Raises:
        PseudonymKeyError: The key is shorter than 16 bytes.
    """
    if isinstance(values, list):
        values = pa.array(values, pa.string())
    return _pseudonymiser(key)(values)


def register_pseudonym_function(con: duckdb.DuckDBPyConnection, key: bytes,
                                name: str = "pseudonym") -> None:
    """Register ``name(VARCHAR) -> VARCHAR`` on ``con``, a vectorised Arrow UDF for ``key``.

    A function of the same name registered before on this connection is replaced. Drop it with
    ``con.remove_function(name)`` when done so the keyed function does not outlive its use.

    Raises:
        PseudonymKeyError: The key is shorter than 16 bytes.
    """
    udf = _pseudonymiser(key)
    try:
        unregister_pseudonym_function(con, name)
    except duckdb.InvalidInputException:
        pass  # nothing registered under that name yet
    con.create_function(name, udf, ["VARCHAR"], "VARCHAR", type="arrow")


def unregister_pseudonym_function(con: duckdb.DuckDBPyConnection,
                                  name: str = "pseudonym") -> None:
    """Drop the function registered by ``register_pseudonym_function``.

    Raises:
        duckdb.InvalidInputException: No Python function of that name is registered.
        RuntimeError: DuckDB kept the function in its catalog.
    """
    # DuckDB 1.5 leaves the function in its catalog when a result of the connection is still
    # open (e.g. after fetchone()); a finished statement closes it first.
    con.execute("SELECT 1").fetchall()
    con.remove_function(name)
    left = con.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name = ?",
                       [name]).fetchall()[0][0]
    if left:
        raise RuntimeError(f"DuckDB function {name!r} is still registered after removal")
