"""What the tests share: paths, tiny profiles and configs, project homes, job and command-line
runners, generated CSV bodies.

Test modules and ``conftest.py`` import from here; no test module imports ``conftest`` or
another test module. A real project home (the way a user's machine has one after the
quickstart): ``prepare_home`` points every setting at a folder (``TAG_PIPELINE_HOME``,
``DAGSTER_HOME``), runs ``tag-pipeline init`` and then the catalog, model and tags jobs in
process, on the home's own Dagster instance, with tiny hyper-parameters. A tiny model the
baseline gate refuses is promoted by ``promote_model_job`` with a reason, as an engineer would.
``copy_home`` gives a test its own relocated copy of such a home, so that job tests start from
the trained chain instead of building it again.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from hypothesis import strategies as st

from tag_pipeline.definitions import build_definitions
from tag_pipeline.defs.resources import (
    CatalogResource,
    ExportResource,
    MlflowResource,
    OperationsResource,
    PseudonymResource,
    WarehouseResource,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


SQL_ROOT = REPO_ROOT / "dbt_like_sql"


SHARED_DATA = Path(os.environ.get("TAG_PIPELINE_SHARED_DATA", REPO_ROOT.parent / "shared/data"))

# Keep the tests away from the user's project home and from GX/MLflow writing into the repo.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


BASIC_PROFILE = {
    "name": "shop",
    "root": "data",
    "source": {"files": ["*.csv", "*.jsonl", "*.parquet"]},
    "columns": {
        "id": "sku",
        "title": "title",
        "description": "description",
        "image": "image",
        "image_root": "images",
        "price": "price",
        "updated_at": "updated_at",
    },
    "tags": [
        {"column": "category_path", "type": "category", "shape": "path", "separator": " > ",
         "level_names": ["l1", "l2", "l3"]},
        {"column": "attributes", "type": "attribute", "shape": "key_value",
         "pair_separator": ";", "kv_separator": ":", "keys": ["color", "gender"]},
        {"column": "occasions", "type": "scene", "shape": "multi", "separator": "|"},
        {"column": "brand", "type": "attribute"},
        {"name": "style", "type": "style", "shape": "lexicon",
         "lexicon": {"Solid": ["solid", "纯色"], "Slim Fit": ["slim fit", "修身"]}},
    ],
}


HEADER = "sku,title,description,image,price,updated_at,category_path,attributes,occasions,brand"


def shared_data_or_skip(name: str) -> Path:
    """The path of a real data set in ../shared/data, or skip with the reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data set {path} is absent on this machine (../shared/data)")
    return path



TINY_MODEL = {"epochs": 1, "batch_size": 64, "embedding_dim": 16, "lstm_units": 8,
              "seq_len": 24, "image_size": 32, "vocab_size": 2000}


TINY_REFINER = {"epochs": 1, "batch_size": 64, "noise_dim": 4, "hidden_dim": 16,
                "noise_samples": 2}


@dataclass(frozen=True)
class ProjectHome:
    """A prepared project home and the environment that points a process at it."""

    home: Path
    env: dict[str, str]
    # job name -> Dagster run id of the run that prepared the home (in its own instance)
    runs: dict[str, str] = field(default_factory=dict)

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"

    @property
    def dagster_home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])


def home_env(home: Path) -> dict[str, str]:
    """The settings (only) that point the project at ``home``; merge into ``os.environ``."""
    return {
        "TAG_PIPELINE_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "TAG_PIPELINE_SHARED_DATA": str(SHARED_DATA),
        "TAG_PIPELINE_PSEUDONYM_KEY": "0" * 64,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "GX_ANALYTICS_ENABLED": "false",
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }


@contextlib.contextmanager
def environment(settings: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``settings`` applied, restored afterwards; MLflow URIs cleared."""
    saved = dict(os.environ)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "TAG_PIPELINE_DUCKDB_PATH",
                 "TAG_PIPELINE_PROFILE", "TAG_PIPELINE_LANDING_DIR"):
        os.environ.pop(name, None)
    os.environ.update(settings)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def gate_promoted(result: dg.ExecuteInProcessResult) -> bool:
    evaluation = result.asset_materializations_for_node("tag_model_evaluation")
    return bool(evaluation) and evaluation[0].metadata["promoted"].value is True


def model_version(result: dg.ExecuteInProcessResult) -> str:
    return str(result.asset_materializations_for_node("tag_model")[0]
               .metadata["model_version"].value)


def prepare_home(home: Path, *, jobs: tuple[str, ...] = ("catalog_job", "model_job",
                                                          "tags_job")) -> ProjectHome:
    """Initialise ``home`` and run ``jobs`` on it in process; raises if a run fails."""
    from tag_pipeline.cli import main as cli_main
    from tag_pipeline.definitions import build_definitions
    from tag_pipeline.defs.resources import build_resources

    settings = home_env(home)
    config = {"model_job": {"ops": {"tag_model": {"config": TINY_MODEL}}},
              "tags_job": {"ops": {"tag_refiner": {"config": TINY_REFINER}}}}
    with environment(settings):
        if cli_main(["init"]) != 0:
            raise RuntimeError(f"tag-pipeline init failed for {home}")
        defs = build_definitions(build_resources())
        runs: dict[str, str] = {}
        with dg.DagsterInstance.get() as instance:
            for job in jobs:
                result = defs.resolve_job_def(job).execute_in_process(
                    instance=instance, run_config=config.get(job), raise_on_error=False)
                if not result.success:
                    raise RuntimeError(f"{job} failed while preparing the project home {home}")
                runs[job] = result.run_id
                if job == "model_job" and not gate_promoted(result):
                    # The one-epoch model usually ties the in-run baseline, and the gate
                    # refuses a tie; the tests need a champion, so an engineer's overrule
                    # (promote, with a reason) puts it in place, as a user would.
                    promote = {"ops": {"promote_model": {"config": {
                        "version": model_version(result), "actor": "tests",
                        "reason": "tiny test model refused by the baseline gate"}}}}
                    overrule = defs.resolve_job_def("promote_model_job").execute_in_process(
                        instance=instance, run_config=promote, raise_on_error=False)
                    if not overrule.success:
                        raise RuntimeError(f"promote_model_job failed in {home}")
    return ProjectHome(home=home, env={**os.environ, **settings}, runs=runs)


def build_once(tmp_path_factory: pytest.TempPathFactory, name: str,
               build: Callable[[Path], None]) -> Path:
    """The folder ``name`` that ``build(folder)`` filled, built once per test session.

    Under pytest-xdist the workers share it: the first that needs it builds it while holding
    a file lock in their common temporary folder; the others wait, then read it. A build that
    raised leaves no ``.done`` marker, so the next worker tries again (and fails the same way,
    naming the cause) instead of reading half a folder. Readers must not change the folder."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        folder = tmp_path_factory.mktemp(name) / name
        build(folder)
        return folder
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent
    folder, done = shared / name, shared / f"{name}.done"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            build(folder)
            done.touch()
    return folder


def copy_home(prepared: ProjectHome, home: Path) -> ProjectHome:
    """A copy of ``prepared`` at ``home``, relocated (``tag-pipeline relocate``) so that it reads
    only itself; its Dagster instance holds the same runs, under the same ids."""
    from tag_pipeline.lib.home import relocate

    shutil.copytree(prepared.home, home)
    relocate(home)
    settings = home_env(home)
    return ProjectHome(home=home, env={**prepared.env, **settings}, runs=dict(prepared.runs))


def run_events(instance: dg.DagsterInstance, run_id: str
               ) -> tuple[dict[str, dict], dict[str, bool]]:
    """The metadata of each asset materialized by run ``run_id`` (by asset name) and the
    outcome of each check it evaluated (by check name), read from the instance's event log."""
    materialized: dict[str, dict] = {}
    checks: dict[str, bool] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            materialized[materialization.asset_key.to_user_string()] = materialization.metadata
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            checks[evaluation.check_name] = evaluation.passed
    return materialized, checks



def job_resources(tmp_path: Path, profile: str = "demo") -> dict:
    return {
        "duckdb": WarehouseResource(database=str(tmp_path / "home" / "warehouse.duckdb")),
        "catalog": CatalogResource(profile=profile, landing_dir=str(tmp_path / "landing"),
                                   shared_data_dir=str(SHARED_DATA)),
        "mlflow": MlflowResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"),
        "exports": ExportResource(directory=str(tmp_path / "exports")),
        "operations": OperationsResource(database=str(tmp_path / "operations.duckdb")),
        "pseudonyms": PseudonymResource(key_env="TAG_PIPELINE_TEST_PSEUDONYM_KEY",
                                        key_file=str(tmp_path / "pseudonym.key")),
    }


def run_catalog_job(tmp_path: Path, profile: str = "demo", raise_on_error: bool = True):
    defs = build_definitions(job_resources(tmp_path, profile))
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home"))
    job = defs.resolve_job_def("catalog_job")
    return job.execute_in_process(instance=instance, raise_on_error=raise_on_error)


def check_results(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def query(tmp_path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()



def definitions(tmp_path: Path) -> dg.Definitions:
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    return build_definitions({
        "duckdb": WarehouseResource(database=str(tmp_path / "home" / "warehouse.duckdb")),
        "catalog": CatalogResource(profile="demo", landing_dir=str(tmp_path / "landing"),
                                   shared_data_dir=str(SHARED_DATA)),
        "mlflow": MlflowResource(tracking_uri=uri, experiment_name="test",
                                 artifact_location=(tmp_path / "artifacts").as_uri(),
                                 registered_model_name="tagger",
                                 refiner_model_name="refiner"),
        "exports": ExportResource(directory=str(tmp_path / "exports")),
        "operations": OperationsResource(database=str(tmp_path / "operations.duckdb")),
        "pseudonyms": PseudonymResource(key_env="TAG_PIPELINE_TEST_PSEUDONYM_KEY",
                                        key_file=str(tmp_path / "pseudonym.key")),
    })


def run(defs: dg.Definitions, instance: dg.DagsterInstance, job: str, config: dict | None = None):
    return defs.resolve_job_def(job).execute_in_process(instance=instance, run_config=config)


def train_champion(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """model_job with the tiny model; promoted by hand (with a reason) if the gate refused it."""
    result = run(defs, instance, "model_job", {"ops": {"tag_model": {"config": TINY_MODEL}}})
    assert result.success
    if not gate_promoted(result):
        promote = {"ops": {"promote_model": {"config": {
            "version": model_version(result), "actor": "tests", "reason": "tiny test model"}}}}
        assert run(defs, instance, "promote_model_job", promote).success



def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``tag-pipeline ARGS`` run in process, in ``cwd`` with ``env``; stdout, stderr and the
    exit code captured as a subprocess would give them."""
    # the settings come from the project home alone, as in ProjectHome.env
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    from tag_pipeline.cli import main as cli_main

    settings = {k: v for k, v in env.items()
                if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    out, err = io.StringIO(), io.StringIO()
    saved_uris = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    saved_cwd = Path.cwd()
    try:
        with environment(settings), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            os.chdir(cwd)
            try:
                code = cli_main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        # the CLI points the mlflow module at the home's store; later tests must not inherit it
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved_uris
    return subprocess.CompletedProcess(["tag-pipeline", *args], code, out.getvalue(),
                                       err.getvalue())



# Generated CSV bodies for the property-based tests.
# A field: any text without line breaks or quotes (a quoted line break joins two lines into
# one record, which line numbers cannot follow: a documented limit), sometimes quoted.
field_text = st.text(st.characters(blacklist_characters='\n\r"', blacklist_categories=("Cs",)),
                max_size=12)


csv_field = st.one_of(field_text, field_text.map(lambda t: f'"{t}"'),
                      st.sampled_from(["", "2026-11-11", "3"]))


def csv_record(width: int) -> st.SearchStrategy[bytes]:
    """A data line: mostly the right number of fields, sometimes too few or many, sometimes
    raw bytes (invalid UTF-8 included), sometimes empty."""
    fields = st.lists(csv_field, min_size=max(1, width - 2), max_size=width + 2).map(
        lambda values: ",".join(values).encode())
    right = st.lists(csv_field, min_size=width, max_size=width).map(
        lambda values: ",".join(values).encode())
    raw = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")
                                     .replace(b'"', b""))
    return st.one_of(right, right, right, fields, raw, st.just(b""))


def csv_body(header: str) -> st.SearchStrategy[bytes]:
    width = len(header.split(","))
    return st.tuples(
        st.lists(csv_record(width), max_size=30),
        st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=31, max_size=31),
        st.booleans(),
    ).map(lambda t: header.encode() + t[1][0] + b"".join(
        line + end for line, end in zip(t[0], t[1][1:], strict=False))
        + (b"" if t[2] else b"tail,without,break"))


def data_lines(body: bytes, first: int) -> set[int]:
    """The numbers of the non-empty lines from ``first`` on (any of the three line breaks)."""
    lines = re.split(rb"\r\n|\r|\n", body)
    if lines and lines[-1] == b"":
        lines.pop()
    return {i for i, line in enumerate(lines, 1) if i >= first and line != b""}
