"""Validate a DataFrame against a declarative list of Great Expectations (GX Core 1.x) specs.

``great_expectations`` costs about 2 s to import, and Dagster imports this module while loading
definitions, so GX (and pandas/polars) are imported inside functions only.
"""

from __future__ import annotations

import functools
import os
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

# Offending rows and values kept per failed expectation.
SAMPLE_SIZE = 10

# GX contexts and their in-memory stores are not thread-safe; one validation at a time.
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation: a GX expectation class name, its keyword arguments and human words."""

    type: str
    kwargs: dict
    description: str = ""


@dataclass
class Failure:
    """A failed expectation with the evidence GX returned for it."""

    expectation: str
    column: str | None
    description: str
    unexpected_count: int | None
    unexpected_percent: float | None
    sample_values: list
    sample_rows: list[dict]
    observed_value: Any = None
    # Set when GX could not evaluate the expectation (e.g. a missing column).
    error: str | None = None


@dataclass
class ValidationOutcome:
    """The result of validating one frame against one suite."""

    suite: str
    success: bool
    evaluated: int
    successful: int
    failures: list[Failure]
    row_count: int

    def to_markdown(self, max_rows: int = 10) -> str:
        """A Markdown report: failed expectations with counts and sample offending rows."""
        head = f"**{self.suite}**: {self.row_count:,} rows, "
        if not self.failures:
            return head + f"all {self.evaluated} expectations passed."
        lines = [
            head + f"{len(self.failures)} of {self.evaluated} expectations failed.",
            "",
            "| expectation | column | description | unexpected | % | observed / sample values |",
            "|---|---|---|---:|---:|---|",
        ]
        for f in self.failures:
            if f.error:
                evidence = f"error: {f.error}"
            elif f.observed_value is not None:
                evidence = f"observed {f.observed_value}"
            else:
                shown = dict.fromkeys(_short(v) for v in f.sample_values[:max_rows])
                evidence = ", ".join(shown)
            percent = "" if f.unexpected_percent is None else f"{f.unexpected_percent:.2f}"
            count = "" if f.unexpected_count is None else f"{f.unexpected_count:,}"
            lines.append(
                f"| {f.expectation} | {_cell(f.column or '(table)')} | {_cell(f.description)} "
                f"| {count} | {percent} | {_md_escape(evidence)} |"
            )
        for f in self.failures:
            if not f.sample_rows:
                continue
            rows = f.sample_rows[:max_rows]
            columns = list(dict.fromkeys(k for row in rows for k in row))
            lines += [
                "",
                f"Offending rows for {f.expectation} on {f.column or '(table)'} "
                f"(first {len(rows)}):",
                "",
                "| " + " | ".join(_cell(c) for c in columns) + " |",
                "|" + "---|" * len(columns),
            ]
            lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
        return "\n".join(lines)

    def to_metadata(self) -> dict[str, int | float | str]:
        """Flat numbers and strings for Dagster metadata; one entry per failed expectation.

        A failure's value is its unexpected count, or for table/aggregate expectations (no
        count) the observed value, or the error text when GX could not evaluate it.
        """
        meta: dict[str, int | float | str] = {
            "evaluated": self.evaluated,
            "successful": self.successful,
            "failed": self.evaluated - self.successful,
            "success_percent": round(100.0 * self.successful / self.evaluated, 4),
        }
        for f in self.failures:
            key = f"failed.{f.expectation}.{f.column or '_table'}"
            suffix = 2
            while key in meta:
                key = f"failed.{f.expectation}.{f.column or '_table'}.{suffix}"
                suffix += 1
            value: int | float | str
            if f.unexpected_count is not None:
                value = f.unexpected_count
            elif isinstance(f.observed_value, int | float) and not isinstance(
                f.observed_value, bool
            ):
                value = f.observed_value
            elif f.error:
                value = f"error: {f.error}"
            else:
                value = str(f.observed_value)
            meta[key] = value
        return meta


def validate_frame(
    df: pd.DataFrame | pl.DataFrame,
    suite: str,
    expectations: list[ExpectationSpec],
    id_columns: list[str],
) -> ValidationOutcome:
    """Validate ``df`` with GX against ``expectations`` and summarise the failures.

    Args:
        df: the data, a pandas or polars DataFrame (polars is converted to pandas).
        suite: the suite's name, used in the outcome and in error messages.
        expectations: the suite's expectations.
        id_columns: columns that identify a row; failed rows are reported by these.

    Raises:
        ValueError: an unknown expectation type or invalid kwargs, an empty suite, or an id
            column missing from ``df``.
        TypeError: ``df`` is neither a pandas nor a polars DataFrame.
    """
    # The documented analytics switch; GX 1.24.1 sends no analytics (the context config below
    # also turns them off), but older/newer 1.x read it when GX is first imported.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    frame = _to_pandas(df, suite)
    if not expectations:
        raise ValueError(f"suite {suite!r} has no expectations")
    missing_ids = [c for c in id_columns if c not in frame.columns]
    if missing_ids:
        raise ValueError(
            f"suite {suite!r}: id column(s) {missing_ids} not in the frame's columns "
            f"{list(frame.columns)}"
        )
    built = [_build_expectation(gx, suite, spec) for spec in expectations]

    result_format = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": SAMPLE_SIZE,
        "unexpected_index_column_names": list(id_columns),
        "return_unexpected_index_query": False,
    }
    # A unique name per run: suites may be re-validated, even from several threads.
    name = f"{suite}__{uuid.uuid4().hex}"
    with _LOCK:
        context, batch_definition = _context()
        gx_suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=built))
        try:
            validation = context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch_definition, suite=gx_suite)
            )
            try:
                result = validation.run(
                    batch_parameters={"dataframe": frame}, result_format=result_format
                )
            finally:
                context.validation_definitions.delete(name)
                # Results are kept in memory by the context; drop them so repeated calls
                # do not accumulate.
                store = context.validation_results_store
                for key in store.list_keys():
                    if key.expectation_suite_identifier.name == name:
                        store.remove_key(key)
        finally:
            context.suites.delete(name)

    spec_by_id = {e.id: spec for e, spec in zip(gx_suite.expectations, expectations, strict=True)}
    failures = [
        _failure(spec_by_id[r.expectation_config.id], r.result, r.exception_info, id_columns)
        for r in result.results
        if not r.success
    ]
    stats = result.statistics
    return ValidationOutcome(
        suite=suite,
        success=bool(result.success),
        evaluated=int(stats["evaluated_expectations"]),
        successful=int(stats["successful_expectations"]),
        failures=failures,
        row_count=len(frame),
    )


@functools.cache
def _context() -> tuple[Any, Any]:
    """The process's ephemeral GX context and its whole-dataframe batch definition.

    Built once: a context is slow to create. It is in memory only (no files written, no
    temporary Data Docs site) with progress bars and analytics off.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    # GX 1.x needs a "current" context for suites (direct EphemeralDataContext(...) fails with
    # DataContextRequiredError), so get_context is used; it becomes GX's current context.
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas(name="tag_pipeline_frames").add_dataframe_asset(
        name="frame"
    )
    return context, asset.add_batch_definition_whole_dataframe("whole_frame")


def _to_pandas(df: Any, suite: str) -> pd.DataFrame:
    import pandas as pd

    if isinstance(df, pd.DataFrame):
        return df
    import polars as pl

    if isinstance(df, pl.DataFrame):
        return df.to_pandas()
    raise TypeError(
        f"suite {suite!r}: expected a pandas or polars DataFrame, got {type(df).__name__}"
    )


def _build_expectation(gx: Any, suite: str, spec: ExpectationSpec) -> Any:
    cls = getattr(gx.expectations, spec.type, None)
    if not (
        isinstance(cls, type)
        and issubclass(cls, gx.expectations.Expectation)
        and cls is not gx.expectations.Expectation
    ):
        raise ValueError(
            f"suite {suite!r}: unknown expectation type {spec.type!r} "
            "(expected a class name from great_expectations.expectations)"
        )
    kwargs = dict(spec.kwargs)
    if spec.description:
        kwargs["description"] = spec.description
    try:
        return cls(**kwargs)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ValueError(
            f"suite {suite!r}: invalid arguments {spec.kwargs!r} for {spec.type}: {exc}"
        ) from exc


def _spec_column(kwargs: dict) -> str | None:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_list" in kwargs:
        return ",".join(kwargs["column_list"])
    if "column_A" in kwargs and "column_B" in kwargs:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    return None


def _failure(
    spec: ExpectationSpec, result: dict, exception_info: Any, id_columns: list[str]
) -> Failure:
    count = result.get("unexpected_count")
    percent = result.get("unexpected_percent")
    return Failure(
        expectation=spec.type,
        column=_spec_column(spec.kwargs),
        description=spec.description,
        unexpected_count=None if count is None else int(count),
        unexpected_percent=None if percent is None else float(percent),
        sample_values=[_plain(v) for v in result.get("partial_unexpected_list") or []],
        # Id columns first, then the failing column(s) GX adds to each row.
        sample_rows=[
            {k: _plain(row[k]) for k in sorted(row, key=lambda k: k not in id_columns)}
            for row in (result.get("partial_unexpected_index_list") or [])[:SAMPLE_SIZE]
        ],
        observed_value=_plain(result.get("observed_value")),
        error=_exception_messages(exception_info),
    )


def _exception_messages(info: Any) -> str | None:
    """GX reports either one exception or a dict of them keyed by metric; join the messages."""
    if not isinstance(info, dict):
        return None
    entries = [info] if "raised_exception" in info else list(info.values())
    messages = [
        str(e.get("exception_message"))
        for e in entries
        if isinstance(e, dict) and e.get("raised_exception")
    ]
    return "; ".join(dict.fromkeys(messages)) or None


def _plain(value: Any) -> Any:
    """Plain Python values (no numpy scalars, NaN/NA or Timestamps) for reports and metadata."""
    import numpy as np
    import pandas as pd

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _short(value: Any) -> str:
    """A compact rendering: rows of compound/pair expectations become tuples."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    return str(value)


def _cell(value: Any) -> str:
    return _md_escape("null" if value is None else str(value))


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
