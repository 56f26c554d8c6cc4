"""Checks of an installation: is each place the pipeline reads and writes there and usable?

Each check gives one ``Check``: ``OK``, ``WARN`` (works, but something is off) or ``FAIL``
(the pipeline cannot run), with a hint of what to run. Nothing here creates or changes a file
or a store: the warehouse is opened read-only and an sqlite MLflow store that does not exist
is reported, not created.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

OK, WARN, FAIL = "OK", "WARN", "FAIL"
# The tables a working pipeline has, with the job that builds each.
CORE_TABLES = {"cleaned_products": "catalog_job", "product_labels": "catalog_job",
               "tag_taxonomy": "catalog_job", "product_features": "model_job",
               "model_tags": "tags_job", "product_tags": "tags_job"}
LANDING_FOLDERS = ("catalog", "sales", "feedback")


@dataclass(frozen=True)
class Check:
    """The verdict of one check."""

    name: str
    status: str
    detail: str
    hint: str = ""

    def line(self) -> str:
        """``STATUS  name: detail (hint)`` on one line."""
        hint = f" -> {self.hint}" if self.hint and self.status != OK else ""
        return f"{self.status:<4}  {self.name}: {self.detail}{hint}"


def check_home(home: Path) -> Check:
    """The project home folder exists and is where its stores think it is (``lib.home``)."""
    from tag_pipeline.lib.home import HomeMovedError, recorded_home

    if not home.is_dir():
        return Check("project home", FAIL, f"{home} does not exist",
                     "run `tag-pipeline init` (or set TAG_PIPELINE_HOME)")
    try:
        old = recorded_home(home)
    except HomeMovedError as exc:
        return Check("project home", FAIL, str(exc))
    if old is None:
        return Check("project home", WARN, f"{home} has no home.json marker, so a copy of it "
                     "would not know it moved", "run `tag-pipeline init`")
    if old != home:
        return Check("project home", FAIL, f"{home} was copied or moved from {old}; its "
                     "stores still name files there", "run `tag-pipeline relocate`")
    return Check("project home", OK, str(home))


def check_warehouse(database: str) -> Check:
    """The warehouse opens read-only and holds the core tables."""
    import duckdb

    from tag_pipeline.lib.warehouse import table_exists

    name = "warehouse"
    if not database.startswith(("md:", "motherduck:")) and not Path(database).is_file():
        return Check(name, FAIL, f"no DuckDB file at {database}",
                     "run catalog_job, model_job and tags_job (e.g. `make quickstart`)")
    try:
        con = duckdb.connect(database, read_only=True)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            pid = re.search(r"PID (\d+)", text)
            holder = f"process {pid.group(1)}" if pid else "another process"
            return Check(name, WARN, f"{database} is locked by {holder} (a Dagster run or "
                                     "another tool writing to it); its tables were not checked",
                         "wait for that run to finish, then run `tag-pipeline doctor` again")
        return Check(name, FAIL, f"{database} cannot be opened: {text.splitlines()[0]}",
                     "check TAG_PIPELINE_DUCKDB_PATH")
    except duckdb.Error as exc:
        return Check(name, FAIL, f"{database} cannot be opened: {str(exc).splitlines()[0]}",
                     "check TAG_PIPELINE_DUCKDB_PATH")
    with con:
        missing = {t: job for t, job in CORE_TABLES.items() if not table_exists(con, t)}
    if missing:
        jobs = sorted(set(missing.values()), key=list(CORE_TABLES.values()).index)
        return Check(name, FAIL, f"{database} lacks table(s) {', '.join(missing)}",
                     f"run {', '.join(jobs)}")
    return Check(name, OK, f"{database} has {', '.join(CORE_TABLES)}")


def sqlite_store_missing(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` URI when it does not exist (MLflow would create it)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    return None if path.is_file() else path


def check_mlflow(client_factory: Callable, tracking_uri: str, registry_uri: str,
                 tagger_name: str, refiner_name: str) -> list[Check]:
    """Tracking store and registry reachable, models registered, champion set and loading.

    Args:
        client_factory: Builds the ``MlflowClient`` (called only once the stores exist).
        tracking_uri: For the messages and the sqlite existence test.
        registry_uri: Likewise.
        tagger_name: The registered tagger.
        refiner_name: The registered refiner.
    """
    from mlflow.exceptions import MlflowException

    from tag_pipeline.lib.models.registry_models import choose_refiner, load_tagger
    from tag_pipeline.lib.registry import CHAMPION, alias_version

    for label, uri in (("MLflow tracking", tracking_uri), ("MLflow registry", registry_uri)):
        missing = sqlite_store_missing(uri)
        if missing is not None:
            return [Check(label, FAIL, f"no sqlite store at {missing} ({uri})",
                          "run model_job (or set MLFLOW_TRACKING_URI)")]
    client = client_factory()
    try:
        experiments = client.search_experiments(max_results=5)
    except MlflowException as exc:
        return [Check("MLflow tracking", FAIL, f"{tracking_uri} does not answer: "
                                               f"{str(exc).splitlines()[0]}",
                      "check MLFLOW_TRACKING_URI (and that the server is running)")]
    checks = [Check("MLflow tracking", OK, f"{tracking_uri} ({len(experiments)} "
                                            "experiment(s))")]
    try:
        client.get_registered_model(tagger_name)
    except MlflowException:
        return [*checks, Check("tagger model", FAIL, f"{registry_uri} has no registered "
                                                         f"model {tagger_name!r}",
                               "run model_job")]
    version = alias_version(client, tagger_name, CHAMPION)
    if version is None:
        return [*checks, Check("tagger model", FAIL, f"{tagger_name} has no {CHAMPION!r} "
                                                         "alias",
                               "run model_job, or `tag-pipeline promote VERSION --reason ...`")]
    try:
        bundle = load_tagger(tagger_name, version)
    except Exception as exc:  # any failure to load is the finding itself
        return [*checks, Check("tagger model", FAIL, f"{tagger_name} v{version} "
                                                         f"({CHAMPION}) does not load: "
                                                         f"{str(exc).splitlines()[0]}",
                               "check the artifact store, or retrain with model_job")]
    n_tags = sum(h.size for h in bundle.space.heads)
    checks.append(Check("tagger model", OK, f"{tagger_name} {CHAMPION} is v{version}; it "
                                                 f"loads ({len(bundle.space.heads)} heads, "
                                                 f"{n_tags} tags)"))
    try:
        client.get_registered_model(refiner_name)
    except MlflowException:
        return [*checks, Check("refiner model", WARN, f"no registered model "
                                                          f"{refiner_name!r}; tags come from "
                                                          "the tagger alone", "run tags_job")]
    choice = choose_refiner(client, refiner_name, version)
    checks.append(Check("refiner model", OK if choice.version else WARN, choice.reason,
                        "run tags_job to train a refiner on the champion tagger"))
    return checks


def check_dagster(dagster_home: Path) -> Check:
    """DAGSTER_HOME holds dagster.yaml with the warehouse pool at one run at a time and run
    monitoring with tag_pipeline's launcher."""
    import yaml

    name = "Dagster instance"
    instance = dagster_home / "dagster.yaml"
    if not instance.is_file():
        return Check(name, FAIL, f"{instance} does not exist", "run `tag-pipeline init`")
    try:
        settings = yaml.safe_load(instance.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        return Check(name, FAIL, f"{instance} is not valid YAML: "
                                 f"{str(exc).splitlines()[0]}", f"fix or delete {instance}, "
                                                                "then `tag-pipeline init`")
    settings = settings if isinstance(settings, dict) else {}
    pools = (settings.get("concurrency") or {}).get("pools") if isinstance(
        settings.get("concurrency"), dict) else None
    pools_ok = (isinstance(pools, dict) and pools.get("granularity") == "run"
                and pools.get("default_limit") == 1)
    if not pools_ok:
        queue = settings.get("run_queue")
        legacy = isinstance(queue, dict) and queue.get("max_concurrent_runs") == 1
        init_fix = (f"replace it with the concurrency section `tag-pipeline init` writes "
                    f"(delete {instance} and run `tag-pipeline init`)")
        if legacy:
            return Check(name, WARN, f"{instance} serialises every run with the legacy "
                                     "run_queue: max_concurrent_runs: 1, so promote_model_job "
                                     "and rollback_model_job wait behind a training run",
                         init_fix)
        return Check(name, WARN, f"{instance} has no concurrency pools with granularity: run "
                                 f"and default_limit: 1 (found {pools!r}); runs that open the "
                                 "warehouse at once fail on the DuckDB lock", init_fix)
    monitoring = settings.get("run_monitoring")
    launcher = settings.get("run_launcher")
    watched = (isinstance(monitoring, dict) and monitoring.get("enabled") is True
               and isinstance(launcher, dict)
               and launcher.get("module") == "tag_pipeline.run_launcher")
    if not watched:
        return Check(name, WARN, f"{instance} has no run monitoring with tag_pipeline's run "
                                 "launcher: a run whose process dies stays STARTED and blocks "
                                 "the one-run queue for good",
                     f"add the run_launcher and run_monitoring sections `tag-pipeline init` "
                     f"writes (delete {instance} and run `tag-pipeline init`)")
    poll = monitoring.get("poll_interval_seconds", 120)
    return Check(name, OK, f"{instance} (warehouse pool: one run at a time; runs that touch "
                           f"only MLflow start at once; a dead run is marked failed within "
                           f"{poll} s)")


def check_stuck_runs(runs: list[tuple[str, str, str]]) -> Check:
    """Runs STARTED whose worker process is gone: (run id, job name, detail) each."""
    name = "Dagster runs"
    if not runs:
        return Check(name, OK, "no run in progress has lost its process")
    listed = "; ".join(f"run {run_id} ({job}): {detail}" for run_id, job, detail in runs[:5])
    more = f" and {len(runs) - 5} more" if len(runs) > 5 else ""
    return Check(name, FAIL, f"{len(runs)} run(s) STARTED whose process is gone, holding the "
                             f"run queue: {listed}{more}",
                 "keep the Dagster daemon running (`dagster dev` or `dagster-daemon run`): its "
                 "run monitor marks such runs failed; or delete the run in the UI's Runs page")


def check_pseudonym_key(env_name: str, env_value: str | None, key_file: Path | None,
                        load: Callable[[], bytes]) -> Check:
    """The pseudonym key loads; a key file is readable by its owner only."""
    name = "pseudonym key"
    try:
        load()
    except Exception as exc:  # the resource's own message names the setting
        return Check(name, FAIL, str(exc).splitlines()[0], "run `tag-pipeline init`, or set "
                                                           f"{env_name}")
    if env_value:
        return Check(name, OK, f"from the environment variable {env_name}")
    mode = stat.S_IMODE(key_file.stat().st_mode)
    if mode & 0o077:
        return Check(name, FAIL, f"key file {key_file} has mode {mode:03o}; others can read "
                                 "it", f"chmod 600 {key_file}")
    return Check(name, OK, f"key file {key_file} (mode {mode:03o})")


def check_landing(landing: Path) -> Check:
    """The landing folders the sensors watch exist."""
    name = "landing folders"
    if not landing.is_dir():
        return Check(name, FAIL, f"{landing} does not exist", "run `tag-pipeline init`")
    missing = [f for f in LANDING_FOLDERS if not (landing / f).is_dir()]
    if missing:
        return Check(name, WARN, f"{landing} lacks {', '.join(missing)}; their sensors have "
                                 "nothing to watch", "run `tag-pipeline init`")
    return Check(name, OK, f"{landing} has {', '.join(LANDING_FOLDERS)}")


def check_profile(load: Callable, name: str, sql_root: Path) -> Check:
    """The configured catalog profile loads its files with no error (``profile check``, with
    no image opened)."""
    from tag_pipeline.lib.catalog.inspect import inspect_profile
    from tag_pipeline.lib.catalog.profile import ProfileError

    hint = f"run `tag-pipeline profile check {name}` for the details"
    try:
        profile = load()
    except ProfileError as exc:
        return Check("catalog profile", FAIL, f"{name}: {exc}", hint)
    if profile.generator and not (profile.root.is_dir() and profile.matching_files()):
        return Check("catalog profile", WARN, f"{name}: no files under {profile.root} yet; "
                     f"the {profile.generator} catalog is generated there by the first "
                     "catalog_job run", "run catalog_job (e.g. `make quickstart`)")
    report = inspect_profile(lambda: profile, sql_root, check_images=False)
    if report.errors:
        return Check("catalog profile", FAIL, f"{name}: {report.errors[0].line()}", hint)
    if report.warnings:
        return Check("catalog profile", WARN, f"{name}: {report.products} products; "
                     f"{len(report.warnings)} warning(s), the first: "
                     f"{report.warnings[0].line()[:240]}", hint)
    return Check("catalog profile", OK, f"{name}: {report.products} products, "
                 f"{0 if report.facets is None else report.facets.height} facets")
