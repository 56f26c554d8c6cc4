"""Which failures the jobs retry: transient ones only.

The jobs' ``RetryPolicy`` (``definitions.RETRY_POLICY``) retries a step that raised. That pays
for a busy MLflow server, a warehouse another process holds, a file still being written; a bad
profile, a SQL model error or a data error fails the same way each time, so retrying it only
delays the message (three tries took about 40 s). ``retry_only_transient`` wraps an asset's
function: an error that is not transient becomes a ``dagster.Failure`` with
``allow_retries=False``, so the step fails once, at once, with the error's own message (its
traceback kept as the cause).

Transient: ``OSError`` (file I/O, network: requests' errors are ``OSError`` too),
``TimeoutError``, DuckDB's ``IOException`` (a held lock) and MLflow
errors whose code says the server is unavailable or busy, or whose message is sqlite's
"database is locked".
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import dagster as dg

_MLFLOW_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED",
                           "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "ABORTED"}


def is_transient(exc: BaseException) -> bool:
    """Whether trying again may succeed (see the module docstring)."""
    import duckdb

    if isinstance(exc, (OSError, TimeoutError, duckdb.IOException)):
        return True
    if type(exc).__name__ == "MlflowException":
        code = str(getattr(exc, "error_code", ""))
        return code in _MLFLOW_TRANSIENT_CODES or "database is locked" in str(exc)
    return False


def _fail_once(exc: Exception) -> dg.Failure:
    return dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False)


def _reraise(exc: Exception) -> None:
    """Raise ``exc`` as the retry policy should see it: as is when it is transient (or already
    Dagster's), else as a Failure that is not retried."""
    if isinstance(exc, (dg.Failure, dg.RetryRequested)) or is_transient(exc):
        raise exc
    raise _fail_once(exc) from exc


def retry_only_transient(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an asset function so that only transient errors are retried (module docstring).

    Dagster reads the wrapped function's parameters through ``functools.wraps``; generator
    functions (assets that yield their results) stay generators."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                _reraise(exc)
        return generator

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            _reraise(exc)
    return wrapper
