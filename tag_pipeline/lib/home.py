"""A project home that can be copied or moved: the marker of where it lives, and the rewrite
of the paths its stores hold when it moved.

The embedded stores keep absolute paths: the sqlite MLflow store the artifact location of
every experiment, run, logged model and model version (``file:///.../mlflow/artifacts/...``);
the DuckDB files the resolved image paths of the landing folder (``cleaned_products``,
``image_checks``, ``product_features``, ...). A copy of the home would go on reading the
original's artifacts and images. So ``tag-pipeline init`` writes ``home.json`` with the home's
absolute path; when the home is found elsewhere, ``relocate`` rewrites every value in those
stores that holds the old home's path (or its ``file://`` URI) to name the new one, then the
marker. Until then the resources refuse to start (``HomeMovedError``), naming the command, so
a copy never reads the original. ``tag-pipeline init`` and ``tag-pipeline relocate`` both
relocate; ``tag-pipeline doctor`` reports a home that needs it.

Only the embedded stores inside the home are rewritten: an MLflow server, Postgres or
MotherDuck hold their own paths, and a landing folder outside the home does not move with it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "home.json"

# (table, column) of the sqlite MLflow store that hold artifact URIs
_MLFLOW_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
)


class HomeMovedError(RuntimeError):
    """The project home was copied or moved and its stores still name the old place."""


def recorded_home(home: Path) -> Path | None:
    """The path ``home.json`` records, or None when there is no marker (a home from before
    markers, or not initialised yet)."""
    marker = home / MARKER
    if not marker.is_file():
        return None
    try:
        return Path(json.loads(marker.read_text(encoding="utf-8"))["home"])
    except (ValueError, KeyError, TypeError) as exc:
        raise HomeMovedError(f"{marker} is not a home marker ({exc}); delete it and run "
                             "`tag-pipeline init`") from exc


def write_marker(home: Path) -> None:
    """Record ``home`` as the home's place."""
    tmp = home / f".{MARKER}.tmp"
    tmp.write_text(json.dumps({"home": str(home)}) + "\n", encoding="utf-8")
    tmp.replace(home / MARKER)


def check_home(home: Path) -> None:
    """Raise ``HomeMovedError`` when ``home`` records another place (it was copied or moved
    and not relocated yet)."""
    old = recorded_home(home)
    if old is not None and old != home:
        raise HomeMovedError(
            f"project home {home} was copied or moved from {old}: its MLflow store and "
            f"warehouse still name files there. Run `tag-pipeline relocate` (TAG_PIPELINE_HOME="
            f"{home}) to point them at this home")


@dataclass
class Relocation:
    """What ``relocate`` rewrote."""

    old: Path | None
    new: Path
    values: dict[str, int] = field(default_factory=dict)  # "store table.column" -> values

    @property
    def moved(self) -> bool:
        return self.old is not None and self.old != self.new


def _prefixes(old: Path, new: Path) -> list[tuple[str, str]]:
    """The forms the old home's path takes in stored values, each with the new one's: the
    path (which a plain ``file://`` URI contains as is) and, where the URI escapes characters
    (spaces, non-ASCII), the URI. Each value is matched by one form only, so a home moved into
    a folder below its old place is not rewritten twice."""
    forms = [(str(old) + "/", str(new) + "/")]
    if old.as_uri() != "file://" + str(old):
        forms.append((old.as_uri() + "/", new.as_uri() + "/"))
    return forms


def _rewrite_sqlite(db: Path, old: Path, new: Path, out: dict[str, int]) -> None:
    con = sqlite3.connect(db)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        with con:
            for table, column in _MLFLOW_COLUMNS:
                if table not in tables:
                    continue
                for before, after in _prefixes(old, new):
                    cur = con.execute(
                        f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                        f'WHERE instr("{column}", ?) > 0', (before, after, before))
                    if cur.rowcount:
                        key = f"{db.name} {table}.{column}"
                        out[key] = out.get(key, 0) + cur.rowcount
    finally:
        con.close()


def _rewrite_duckdb(db: Path, old: Path, new: Path, out: dict[str, int]) -> None:
    import duckdb

    from tag_pipeline.lib.sql import quote_ident, transaction

    con = duckdb.connect(str(db))
    try:
        columns = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_catalog, table_schema, table_name) "
            "WHERE c.data_type = 'VARCHAR' AND t.table_type = 'BASE TABLE'").fetchall()
        with transaction(con, f"relocating {db}"):
            for schema, table, column in columns:
                name = f"{quote_ident(schema)}.{quote_ident(table)}"
                col = quote_ident(column)
                for before, after in _prefixes(old, new):
                    n = con.execute(
                        f"UPDATE {name} SET {col} = replace({col}, ?, ?) WHERE contains({col}, ?)",
                        [before, after, before]).fetchone()[0]
                    if n:
                        key = f"{db.name} {table}.{column}"
                        out[key] = out.get(key, 0) + n
    finally:
        con.close()


def relocate(home: Path) -> Relocation:
    """Point the home's embedded stores at ``home`` where they name the place ``home.json``
    records, then record ``home`` (see the module docstring). Each store is rewritten in one
    transaction; a crash part way leaves the marker at the old place, so running it again
    finishes the job (a value already rewritten no longer matches the old prefix)."""
    old = recorded_home(home)
    result = Relocation(old, home)
    if result.moved:
        mlflow_db = home / "mlflow" / "mlflow.db"
        if mlflow_db.is_file():
            _rewrite_sqlite(mlflow_db, old, home, result.values)
        for db in sorted(home.glob("*.duckdb")):
            _rewrite_duckdb(db, old, home, result.values)
    write_marker(home)
    return result
