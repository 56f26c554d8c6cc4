"""A profile checked against its files: what ``catalog_job`` would load, and what looks wrong.

``inspect_profile`` reads the profile's landing files exactly as ``catalog_job`` does (the same
ingest and SQL models), into a private in-memory DuckDB, so nothing of the project is written.
It reports the column map, the files' row accounting, a few sample products, the labels per
facet with counts and examples, and every finding: errors (the profile cannot be loaded, a
column does not exist, no product survives) and suspicions (time stamps in no accepted form,
bracket or quote debris in tag values, facets whose values are mostly on one product, a tag
rule that gives no tag, attribute documents that do not parse, unreadable lines).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from tag_pipeline.lib.catalog.profile import CatalogProfile, ProfileError, TagSpec

ERROR, WARNING, NOTE = "ERROR", "WARN", "NOTE"
# Rejected rows are a note (each is kept with its reason) unless this share of rows or more.
REJECTED_SHARE = 0.2
# A facet with at least this many values, most of them on one product, is suspicious.
MIN_VALUES_FOR_UNIQUE = 10
UNIQUE_SHARE = 0.5
# Tag values that start or end with brackets or quotes, or hold hash or JSON syntax.
DEBRIS_PATTERN = r"""^[\[\]{}"']|[\[\]{}"']$|=>|":"""


@dataclass(frozen=True)
class Finding:
    """One error or suspicion, with the profile key or file it concerns."""

    level: str
    where: str
    message: str

    def line(self) -> str:
        return f"{self.level:<5} {self.where}: {self.message}"


@dataclass
class ProfileReport:
    """What ``inspect_profile`` found."""

    name: str
    findings: list[Finding] = field(default_factory=list)
    column_map: list[tuple[str, str]] = field(default_factory=list)
    files: pl.DataFrame | None = None
    samples: pl.DataFrame | None = None
    facets: pl.DataFrame | None = None
    products: int = 0
    images_checked: bool = True
    seconds: float = 0.0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == WARNING]


def column_map(profile: CatalogProfile) -> list[tuple[str, str]]:
    """(profile key, what it reads) for every column the profile uses."""
    rows = [("columns.id", profile.id_column or "(generated: <file stem>:<line>)"),
            ("columns.title", profile.title_column)]
    for key, value in (("columns.description", profile.description_column),
                       ("columns.price", profile.price_column),
                       ("columns.updated_at", profile.updated_at_column)):
        if value:
            rows.append((key, value))
    if profile.image_column:
        rows.append(("columns.image", profile.image_column))
    elif profile.image_template:
        rows.append(("columns.image", f"template {profile.image_template}"))
    for i, spec in enumerate(profile.tags):
        source = ", ".join(spec.columns) if spec.columns else "title and description"
        rows.append((f"tags[{i}] ({spec.name})", f"{source}: {spec.tag_type}, {spec.shape}"))
    for i, feature in enumerate(profile.features):
        rows.append((f"features[{i}] ({feature.name})", f"{feature.column}: {feature.kind}"))
    return rows


def spec_of_facet(profile: CatalogProfile, facet: str) -> tuple[int, TagSpec] | None:
    """The tag rule (index, spec) whose labels carry ``facet``."""
    for i, spec in enumerate(profile.tags):
        if spec.shape in ("path", "levels"):
            if facet in spec.level_names or facet.startswith(f"{spec.name}_l"):
                return i, spec
        elif spec.shape == "attributes":
            if facet.startswith(f"{spec.name}."):
                return i, spec
        elif spec.shape == "key_value":
            if facet.lower() in {k.lower() for k in spec.keys}:
                return i, spec
        elif facet == spec.name:
            return i, spec
    return None


def _where(profile: CatalogProfile, facet: str) -> str:
    found = spec_of_facet(profile, facet)
    return f"tags[{found[0]}] ({found[1].name})" if found else f"facet {facet}"


def inspect_profile(load: Callable[[], CatalogProfile], sql_root: Path,
                    check_images: bool = True, samples: int = 5) -> ProfileReport:
    """Load the profile and its files into a private in-memory warehouse and report.

    ``load`` parses the profile (its errors become findings). Nothing outside a temporary
    folder is written.
    """
    from tag_pipeline.lib.catalog.chain import run_catalog_chain
    from tag_pipeline.lib.sql import SqlModelError

    started = time.perf_counter()
    try:
        profile = load()
    except ProfileError as exc:
        report = ProfileReport(name="?")
        report.findings.append(Finding(ERROR, "profile", str(exc)))
        return report
    report = ProfileReport(name=profile.name, column_map=column_map(profile),
                           images_checked=check_images)
    with tempfile.TemporaryDirectory(prefix="tag-pipeline-profile-") as spill:
        con = duckdb.connect(":memory:", config={"temp_directory": spill})
        try:
            try:
                run_catalog_chain(con, profile, sql_root, check_images=check_images)
            except (ProfileError, SqlModelError, duckdb.Error) as exc:
                message = str(exc)
                if profile.generator and not (profile.root.is_dir() and
                                              profile.matching_files()):
                    message += (f" (the {profile.generator} catalog is generated there by the "
                                f"first catalog_job run, or by `tag-pipeline demo --out "
                                f"{profile.root}`)")
                report.findings.append(Finding(ERROR, "files", message))
                return report
            _describe(con, profile, report, samples)
            _suspicions(con, profile, report)
        finally:
            con.close()
            report.seconds = time.perf_counter() - started
    return report


def _describe(con: duckdb.DuckDBPyConnection, profile: CatalogProfile, report: ProfileReport,
              samples: int) -> None:
    report.files = con.execute(
        "SELECT source_file, raw_rows, parse_rejected, cleaned, rejected, superseded, "
        "updated_at_unparsed FROM row_accounting ORDER BY source_file").pl()
    report.products = con.execute("SELECT count(*) FROM cleaned_products").fetchone()[0]
    report.samples = con.execute(
        "SELECT product_id, title, left(description, 60) AS description, price, currency, "
        "updated_at, image_status FROM cleaned_products ORDER BY source_file, source_line "
        "LIMIT ?", [samples]).pl()
    report.facets = con.execute(
        """
        SELECT tag_type, facet, count(*) AS "values", sum(product_count) AS labels,
               count(*) FILTER (WHERE product_count = 1) AS one_product_values,
               array_to_string(list(tag || ' (' || product_count || ')'
                                    ORDER BY product_count DESC, tag)[:4], ', ') AS examples
        FROM tag_taxonomy
        GROUP BY tag_type, facet
        ORDER BY tag_type, facet
        """).pl()
    if report.products == 0:
        report.findings.append(Finding(ERROR, "files", "no product survives loading and "
                                       "cleaning; see the file table and rejected rows"))


def _suspicions(con: duckdb.DuckDBPyConnection, profile: CatalogProfile,
                report: ProfileReport) -> None:
    add = report.findings.append
    # lines the reader could not use
    # lines the reader could not use, rows rejected by cleaning: a note, each is kept with its
    # reason; a warning where they are a large share of the rows
    raw_rows = max(1, con.execute("SELECT sum(raw_rows) FROM row_accounting").fetchone()[0] or 0)

    def level(n: int) -> str:
        return WARNING if n >= REJECTED_SHARE * raw_rows else NOTE

    for source_file, error_type, n, first, detail in con.execute(
            "SELECT source_file, error_type, count(*), min(source_line), "
            "arg_min(error_message, source_line) FROM raw_product_rejects GROUP BY ALL "
            "ORDER BY 1, 2").fetchall():
        add(Finding(level(n), source_file, f"{n} line(s) could not be read ({error_type}; "
                    f"the first is line {first}: {str(detail)[:160]})"))
    for reason, n, example in con.execute(
            "SELECT reject_reason, count(*), arg_min(source_file || ' line ' || source_line, "
            "source_line) FROM stg_products WHERE row_status = 'rejected' GROUP BY ALL "
            "ORDER BY 2 DESC").fetchall():
        add(Finding(level(n), "columns", f"{n} row(s) rejected as {reason} (e.g. {example}; "
                    "rejected_products lists them all)"))
    # time stamps in no accepted form
    for source_file, n, total, example in con.execute(
            "SELECT source_file, count(*) FILTER (WHERE updated_at_unparsed), count(*), "
            "any_value(updated_at_text) FILTER (WHERE updated_at_unparsed) FROM stg_products "
            "GROUP BY ALL HAVING count(*) FILTER (WHERE updated_at_unparsed) > 0 ORDER BY 1"
    ).fetchall():
        add(Finding(WARNING, "columns.updated_at",
                    f"{n} of {total} row(s) of {source_file} have an update time in no accepted "
                    f"form (e.g. {example!r}); they load with no update time, so the latest "
                    "version of such a product is the one loaded last. Accepted: ISO 8601 "
                    "dates and times ('2016-03-25 22:59:23', 'T' or a space), offsets +0000, "
                    "+00:00, Z or UTC, slashes (2016/03/25) and Unix epoch seconds or "
                    "milliseconds; day-first dates are not"))
    # bracket or quote debris in tag values
    for tag_type, facet, n, example in con.execute(
            "SELECT tag_type, facet, count(DISTINCT tag), min(tag) FROM product_labels "
            "WHERE regexp_matches(tag, ?) GROUP BY ALL ORDER BY 1, 2",
            [DEBRIS_PATTERN]).fetchall():
        add(Finding(WARNING, _where(profile, facet),
                    f"facet {facet} ({tag_type}): {n} value(s) carry bracket or quote debris "
                    f"(e.g. {example!r}). A JSON array of paths is unwrapped by shape: path; "
                    "{key, value} lists, JSON objects and '=>' hashes need shape: attributes"))
    # facets whose values are mostly on one product
    if report.facets is not None:
        for row in report.facets.iter_rows(named=True):
            n, single = row["values"], row["one_product_values"]
            if n >= MIN_VALUES_FOR_UNIQUE and single > UNIQUE_SHARE * n:
                found = spec_of_facet(profile, row["facet"])
                shape = found[1].shape if found else ""
                fix = {"path": "set max_single_product_share: 0.5 on the rule (drops a "
                               "product-name last part) or max_depth",
                       "levels": "leave that column out of columns",
                       "attributes": "list the keys to keep under keys"}.get(
                    shape, "leave the column out or map its values")
                add(Finding(WARNING, _where(profile, row["facet"]),
                            f"facet {row['facet']} ({row['tag_type']}): {single} of {n} values "
                            "are on one product only (a product name or id, not a tag; no "
                            f"model can learn it); {fix}"))
    # rules that give no tag, and attribute documents that do not parse
    labelled = {r[0] for r in con.execute("SELECT DISTINCT facet FROM product_labels"
                                          ).fetchall()}
    for i, spec in enumerate(profile.tags):
        where = f"tags[{i}] ({spec.name})"
        if spec.shape == "attributes":
            bad, total, example = con.execute(
                """
                SELECT count(*) FILTER (WHERE NOT json_valid(doc)), count(*),
                       any_value(v) FILTER (WHERE NOT json_valid(doc))
                FROM (SELECT v, attribute_doc(v) AS doc
                      FROM (SELECT nullif(trim(tag_fields[?]), '') AS v FROM cleaned_products)
                      WHERE v IS NOT NULL)
                """, [spec.field_key]).fetchone()
            if bad:
                add(Finding(WARNING, where, f"{bad} of {total} value(s) of column "
                            f"{spec.columns[0]} are neither JSON nor '=>' hash documents "
                            f"(e.g. {str(example)[:120]!r}); they give no tag. For 'key: value; "
                            "...' text use shape: key_value"))
        if not any(spec_of_facet(profile, f) == (i, spec) for f in labelled):
            source = f"column {spec.columns[0]}" if spec.columns else "the lexicon"
            add(Finding(WARNING, where, f"{source} gave no tag on any product"
                        + (f"; keys kept: {list(spec.keys)}" if spec.keys else "")))
    for i, feature in enumerate(profile.features):
        n = con.execute("SELECT count(*) FROM cleaned_products WHERE "
                        "nullif(trim(tag_fields[?]), '') IS NOT NULL",
                        [feature.field_key]).fetchone()[0]
        if n == 0:
            add(Finding(WARNING, f"features[{i}] ({feature.name})",
                        f"column {feature.column} is empty on every product"))


def render(report: ProfileReport, source: str = "") -> str:
    """The report as text for the terminal."""
    from tag_pipeline.lib.warehouse import markdown_table

    out = [f"Profile {report.name}{f' ({source})' if source else ''}: read in "
           f"{report.seconds:.1f} s; {report.products} products"
           + ("" if report.images_checked else "; images not checked (--no-images)")]
    if report.column_map:
        out.append("\nColumn map:")
        width = max(len(k) for k, _ in report.column_map)
        out += [f"  {k:<{width}}  {v}" for k, v in report.column_map]
    for title, frame in (("Files (raw rows = parse-rejected + cleaned + rejected + "
                          "superseded):", report.files),
                         ("Sample products:", report.samples),
                         ("Labels per facet (examples: the most frequent, with their "
                          "products):", report.facets)):
        if frame is not None and frame.height:
            out += ["", title, markdown_table(frame, max_chars=80)]
    out.append("")
    out += [f.line() for f in report.findings] or ["No finding."]
    notes = len(report.findings) - len(report.errors) - len(report.warnings)
    out.append(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s), "
               f"{notes} note(s)")
    return "\n".join(out)
