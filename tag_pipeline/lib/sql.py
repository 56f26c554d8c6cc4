"""A small dbt-like runner for the SQL models in ``dbt_like_sql/``.

One ``SELECT`` per file; the file name is the table name. A model names the tables it reads
as ``{{ ref('name') }}``, which is how dependencies are found (never declared twice), and
reads settings as ``{{ var('name') }}``. Files under ``macros/`` hold DuckDB macros that are
created on the connection before a model runs. Files under ``writes/`` are not models: they are
the statements a library writer runs itself (``load_statement``), with its refs mapped to the
tables it names. A model is written with
``CREATE OR REPLACE TABLE ... AS`` inside a transaction: readers see the old table or the
new one, never half of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

_REF = re.compile(r"\{\{\s*ref\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*\)\s*\}\}")
_VAR = re.compile(r"\{\{\s*var\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*\)\s*\}\}")
_ANY_JINJA = re.compile(r"\{\{.*?\}\}", re.S)
MACRO_FOLDER = "macros"
WRITES_FOLDER = "writes"


class SqlModelError(ValueError):
    """A SQL model is malformed or failed to run."""


@dataclass(frozen=True)
class SqlModel:
    """One SQL model file."""

    name: str
    path: Path
    folder: str
    sql: str
    refs: tuple[str, ...]
    description: str


def quote_ident(name: str) -> str:
    """Quote a name as a DuckDB identifier (so it can never act as SQL)."""
    return '"' + name.replace('"', '""') + '"'


class NestedTransactionError(RuntimeError):
    """A block that runs its own transaction was called inside another one."""


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection, caller: str = "") -> Iterator[None]:
    """Run the block's statements in one transaction: committed at the end, rolled back (and
    the error raised again) if anything in it fails, so readers never see half of it.

    Raises:
        NestedTransactionError: The connection is already inside a transaction (``caller``
            names the block in the message).
    """
    try:
        con.execute("BEGIN TRANSACTION")
    except duckdb.TransactionException as exc:
        raise NestedTransactionError(
            f"{caller or 'transaction'} runs its own transaction; the connection is already "
            "inside one") from exc
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _description(sql: str) -> str:
    lines = []
    for line in sql.splitlines():
        stripped = line.strip()
        if stripped.startswith("--"):
            lines.append(stripped.lstrip("-").strip())
        elif stripped:
            break
    return " ".join(lines)


def parse_model(path: Path, root: Path) -> SqlModel:
    """Read one model file and find the tables it refers to."""
    sql = path.read_text(encoding="utf-8")
    refs = tuple(dict.fromkeys(_REF.findall(sql)))
    leftover = _ANY_JINJA.sub(
        lambda m: "" if _REF.fullmatch(m.group(0)) or _VAR.fullmatch(m.group(0)) else m.group(0),
        sql,
    )
    bad = _ANY_JINJA.findall(leftover)
    if bad:
        raise SqlModelError(f"SQL model {path}: unsupported template expression {bad[0]!r}")
    folder = path.parent.relative_to(root).as_posix()
    return SqlModel(name=path.stem, path=path, folder=folder, sql=sql, refs=refs,
                    description=_description(sql))


def discover_models(root: Path) -> list[SqlModel]:
    """Every model under ``root`` (macros and writes excluded), checked for unique names and
    cycles."""
    if not root.is_dir():
        raise SqlModelError(f"SQL model folder {root} does not exist")
    models = [parse_model(p, root) for p in sorted(root.rglob("*.sql"))
              if not {MACRO_FOLDER, WRITES_FOLDER} & set(p.relative_to(root).parts)]
    seen: dict[str, Path] = {}
    for m in models:
        if m.name in seen:
            raise SqlModelError(
                f"SQL model name {m.name!r} is used twice: {seen[m.name]} and {m.path}"
            )
        seen[m.name] = m.path
    by_name = {m.name: m for m in models}

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in stack:
            raise SqlModelError(f"SQL models form a cycle: {' -> '.join((*stack, name))}")
        for ref in by_name[name].refs if name in by_name else ():
            visit(ref, (*stack, name))

    for m in models:
        visit(m.name, ())
    return models


def render(model: SqlModel, variables: dict[str, int | float | str]) -> str:
    """The model's SQL with refs as quoted table names and vars as literals."""

    def var(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in variables:
            raise SqlModelError(
                f"SQL model {model.path}: var {key!r} is not set (known: {sorted(variables)})"
            )
        value = variables[key]
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise SqlModelError(f"SQL model {model.path}: var {key!r} has unsupported type")
        if isinstance(value, str):
            return "'" + value.replace("'", "''") + "'"
        return repr(value)

    return _VAR.sub(var, _REF.sub(lambda m: quote_ident(m.group(1)), model.sql))


def load_statement(root: Path, name: str, variables: dict[str, int | float | str],
                   refs: dict[str, str]) -> str:
    """The SQL of ``writes/<name>.sql`` rendered for running, without a trailing semicolon.

    Args:
        root: The ``dbt_like_sql`` folder.
        name: The statement's file name without ``.sql``.
        variables: Values for its ``{{ var('x') }}``, rendered as literals.
        refs: The table each ``{{ ref('x') }}`` stands for (every ref must be mapped).

    Raises:
        SqlModelError: The file is missing, or a ref or var is not given.
    """
    path = root / WRITES_FOLDER / f"{name}.sql"
    if not path.is_file():
        raise SqlModelError(f"SQL statement file {path} does not exist")
    statement = parse_model(path, root)
    missing = [ref for ref in statement.refs if ref not in refs]
    if missing:
        raise SqlModelError(
            f"SQL statement {path}: ref(s) {missing} are not mapped (given: {sorted(refs)})"
        )
    mapped = _REF.sub(lambda m: quote_ident(refs[m.group(1)]), statement.sql)
    return render(replace(statement, sql=mapped), variables).strip().rstrip(";")


def _nfkc(values: pa.Array) -> pa.Array:
    return pc.utf8_normalize(values, form="NFKC")


def prepare_connection(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Register the Python functions and the macros the models use."""
    try:
        con.create_function("nfkc", _nfkc, ["VARCHAR"], "VARCHAR", type="arrow")
    except (duckdb.CatalogException, duckdb.NotImplementedException):
        pass  # already registered on this connection
    macro_dir = root / MACRO_FOLDER
    for path in sorted(macro_dir.glob("*.sql")) if macro_dir.is_dir() else ():
        try:
            con.execute(path.read_text(encoding="utf-8"))
        except duckdb.Error as exc:
            raise SqlModelError(f"SQL macro file {path} failed: {exc}") from exc


def run_model(con: duckdb.DuckDBPyConnection, model: SqlModel, root: Path,
              variables: dict[str, int | float | str]) -> int:
    """Build one model's table atomically and return its row count."""
    prepare_connection(con, root)
    body = render(model, variables).strip().rstrip(";")
    try:
        with transaction(con, f"SQL model {model.name}"):
            con.execute(f"CREATE OR REPLACE TABLE {quote_ident(model.name)} AS {body}")
            count = con.execute(f"SELECT count(*) FROM {quote_ident(model.name)}").fetchone()[0]
    except duckdb.Error as exc:
        raise SqlModelError(f"SQL model {model.path} failed: {exc}") from exc
    return int(count)


def topological_order(models: list[SqlModel]) -> list[SqlModel]:
    """Models ordered so each comes after the models it refers to."""
    by_name = {m.name: m for m in models}
    ordered: list[SqlModel] = []
    done: set[str] = set()

    def visit(model: SqlModel) -> None:
        if model.name in done:
            return
        for ref in model.refs:
            if ref in by_name:
                visit(by_name[ref])
        done.add(model.name)
        ordered.append(model)

    for model in models:
        visit(model)
    return ordered
