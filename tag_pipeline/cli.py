"""The ``tag-pipeline`` command line: what engineers do outside the Dagster UI."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

INSTANCE_YAML = """\
# Written by `tag-pipeline init`. Dagster instance settings for tag_pipeline.
telemetry:
  enabled: false
# DuckDB allows one writing process per database file. Every asset, check and op that opens
# the warehouse is in the `warehouse` pool; with run granularity a queued run whose steps need
# that pool starts only when no running run holds it, one at a time. Runs that touch only MLflow
# (promote_model_job, rollback_model_job) hold no pool and start at once, even during training.
concurrency:
  pools:
    granularity: run
    default_limit: 1
  runs:
    max_concurrent_runs: 4
# A run whose process died (kill -9, out of memory, reboot) is marked failed by the daemon
# within poll_interval_seconds, so it cannot hold the pool: the launcher below is Dagster's
# default one plus a check that the run's local worker process is still alive.
run_launcher:
  module: tag_pipeline.run_launcher
  class: LocalRunLauncher
run_monitoring:
  enabled: true
  poll_interval_seconds: 15
  start_timeout_seconds: 180
  max_resume_run_attempts: 0
"""

POSTGRES_YAML = """\
# Dagster's run, event and schedule storage in Postgres (needs dagster-postgres installed).
storage:
  postgres:
    postgres_url:
      env: TAG_PIPELINE_DAGSTER_PG_URL
"""


def _init(_: argparse.Namespace) -> int:
    from tag_pipeline.lib.home import relocate
    from tag_pipeline.lib.settings import read_settings

    settings = read_settings()
    home, dagster_home, landing = settings.home, settings.dagster_home, settings.landing_dir
    home.mkdir(parents=True, exist_ok=True)
    moved = relocate(home)  # records the home's place; rewrites its stores if it moved
    if moved.moved:
        _print_relocation(moved)
    for folder in (home, dagster_home, landing / "catalog", landing / "sales",
                   landing / "feedback"):
        folder.mkdir(parents=True, exist_ok=True)
    key_file = settings.pseudonym_key_file
    if not key_file.exists() and not settings.pseudonym_key_set:
        import secrets

        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_hex(32), encoding="utf-8")
    instance = dagster_home / "dagster.yaml"
    if not instance.exists():
        text = INSTANCE_YAML
        if settings.dagster_pg_url:
            text += POSTGRES_YAML
        instance.write_text(text, encoding="utf-8")
    print(f"project home:   {home}")
    print(f"DAGSTER_HOME:   {dagster_home}")
    print(f"warehouse:      {settings.duckdb_path}")
    print(f"landing folder: {landing}")
    print(f"profile:        {settings.profile}")
    return 0


def _print_relocation(moved) -> None:
    print(f"project home moved from {moved.old} to {moved.new}: rewrote "
          f"{sum(moved.values.values()):,} stored path(s)")
    for where, n in sorted(moved.values.items()):
        print(f"  {where}: {n:,}")


def _serving_model(args: argparse.Namespace) -> int:
    from tag_pipeline.lib.cli.models import serving_model

    mlflow = _mlflow()
    uri, why = serving_model(mlflow.client(), mlflow.registered_model_name,
                             mlflow.refiner_model_name, args.model)
    print(uri)
    print(why, file=sys.stderr)
    return 0


def _relocate(_: argparse.Namespace) -> int:
    from tag_pipeline.lib.home import relocate
    from tag_pipeline.lib.settings import project_home

    home = project_home()
    if not home.is_dir():
        raise FileNotFoundError(f"project home {home} does not exist")
    moved = relocate(home)
    if moved.moved:
        _print_relocation(moved)
    else:
        print(f"project home {home} is where its stores think it is; nothing to rewrite")
    return 0


def _demo(args: argparse.Namespace) -> int:
    if args.shape == "marketplace":
        from tag_pipeline.lib.catalog.marketplace import write_marketplace_export

        export = write_marketplace_export(Path(args.out), products=args.products,
                                          more=max(1, args.products // 20), seed=args.seed)
        print(f"wrote {export.products} products to {', '.join(str(f) for f in export.files)}"
              f" and their profile {export.profile}")
        print(f"next: tag-pipeline profile check {export.profile}")
        return 0
    from tag_pipeline.lib.catalog.demo import generate_demo_catalog

    manifest = generate_demo_catalog(Path(args.out), n_products=args.products, seed=args.seed)
    print(f"wrote {manifest.n_rows} rows ({manifest.n_products} products) to {args.out}")
    return 0


def _summary(_: argparse.Namespace) -> int:
    import duckdb

    from tag_pipeline.lib.warehouse import counts_by, markdown_table, read_table, table_exists

    database = _settings().duckdb_path
    with duckdb.connect(database, read_only=True) as con:
        if not table_exists(con, "row_accounting"):
            raise SystemExit(f"error: {database} has no row_accounting table; run the job first")
        print("Row accounting (raw = parse-rejected + cleaned + rejected + superseded):")
        print(markdown_table(read_table(con, "row_accounting").drop("load_id", "loaded_at")))
        print("\nRejected rows by reason:", counts_by(con, "rejected_products", "reject_reason"))
        print("Cleaned products by language:", counts_by(con, "cleaned_products", "text_lang"))
        print("Image status:", counts_by(con, "cleaned_products", "image_status"))
        print("Labels by tag type:", counts_by(con, "product_labels", "tag_type"))
        if table_exists(con, "product_tags"):
            print("\nproduct_tags by source:", counts_by(con, "product_tags", "source"))
            print("product_tags by tag type:", counts_by(con, "product_tags", "tag_type"))
            print("product_tag_history by change:",
                  counts_by(con, "product_tag_history", "change"))
            print("Sample tags with explanations:")
            sample = con.table("product_tags").filter("explanation IS NOT NULL").select(
                "product_id, tag, tag_type, score, source, explanation").limit(8).pl()
            print(markdown_table(sample))
        if table_exists(con, "catalog_tag_disagreements"):
            print("\nSuspected catalog errors (catalog_tag_disagreements) by facet:",
                  counts_by(con, "catalog_tag_disagreements", "facet"))
    _print_gate_decisions()
    return 0


def _print_gate_decisions(limit: int = 5) -> None:
    """The registry's latest tagger versions with the gate's decision and figures."""
    import polars as pl

    from tag_pipeline.lib.settings import MlflowStore
    from tag_pipeline.lib.warehouse import markdown_table

    mlflow = MlflowStore.of(_settings())
    name = mlflow.registered_model_name
    try:
        client = mlflow.client()
        versions = client.search_model_versions(f"name = '{name}'")
        aliases = client.get_registered_model(name).aliases if versions else {}
    except Exception as error:  # an unreachable or empty registry is reported, not fatal
        print(f"\nModel registry {mlflow.tracking_uri}: not readable ({error})")
        return
    if not versions:
        print(f"\nModel registry: no version of {name!r} yet; run model_job")
        return
    versions = sorted(versions, key=lambda v: int(v.version), reverse=True)[:limit]
    rows = [{
        "version": str(v.version),
        "aliases": ", ".join(sorted(a for a, n in aliases.items() if str(n) == str(v.version))),
        "metric": v.tags.get("gate.metric", ""),
        "tagger": v.tags.get("gate.candidate_score", ""),
        "baseline": v.tags.get("gate.baseline_score", ""),
        "champion then": v.tags.get("gate.champion_score", ""),
        "promoted": v.tags.get("gate.promoted", "not evaluated"),
        "vs baseline (95% interval)": _difference_cell(v.tags),
        "gate's reason": v.tags.get("gate.reason", ""),
    } for v in versions]
    print(f"\nModel versions of {name!r} (test split; the gate's decision):")
    print(markdown_table(pl.DataFrame(rows)))
    _print_test_results(client, versions)


def _difference_cell(tags: dict[str, str]) -> str:
    """``+0.0023 (+0.0010 to +0.0036)``: tagger - baseline and its bootstrap interval, from
    the gate's tags (empty for a version evaluated before the gate recorded them)."""
    difference, interval = tags.get("gate.baseline_difference"), tags.get("gate.baseline_interval")
    if not difference or not interval:
        return ""
    low, _, high = interval.partition(" to ")
    return f"{float(difference):+.4f} ({float(low):+.4f} to {float(high):+.4f})"


def _print_test_results(client, versions) -> None:
    """The latest evaluated version's test-split table (tag_model_evaluation's
    ``test_facets.csv``): the tagger, its parts and the baseline per tag type and facet."""
    import tempfile

    import polars as pl

    from tag_pipeline.lib.warehouse import markdown_table

    evaluated = [v for v in versions if v.tags.get("gate.promoted") is not None]
    if not evaluated:
        print("No version has been evaluated yet (tag_model_evaluation, in model_job).")
        return
    latest = evaluated[0]
    with tempfile.TemporaryDirectory(prefix="tag-pipeline-summary-") as tmp:
        try:
            path = client.download_artifacts(latest.run_id, "test_facets.csv", tmp)
        except Exception as error:  # an older run, or an artifact store out of reach
            print(f"Test results of v{latest.version}: not readable ({_first_line(error)})")
            return
        table = pl.read_csv(path)
    keep = ["scope", *[c for c in table.columns if c.split(" ")[-1] in ("tagger", "baseline")]]
    print(f"\nTest split of v{latest.version} (accuracy of single-valued facets, micro-F1 "
          "and macro-F1; tagger vs the TF-IDF + LinearSVC baseline, same split, same run):")
    print(markdown_table(table.select(keep), max_chars=40))


PRODUCT_FILE_HELP = """\
Product files (CSV, JSON Lines .jsonl/.ndjson or Parquet, by extension) have one row per
product and the columns:
  product_id   required, unique in the file
  title        required, any language (Chinese and English alike)
  description  optional
  image_path   optional; a relative path starts at the product file's folder. A missing or
               undecodable image is reported per row and the product is tagged from its
               text only, as the pipeline does.
  feature columns  the catalog features the model was trained with (its profile's
               `features:`, e.g. year for myntra); taken as empty when absent.
Other columns are ignored. The file is read as the pipeline reads a landing file: a line that
cannot be read (invalid UTF-8, bad quoting, a wrong number of fields, a JSON line that is not
an object) or a row with an empty or repeated product_id is reported with its line and reason
and not tagged; every other row is tagged."""

TAG_FILE_HELP = """\
The tag file (CSV, JSON Lines or Parquet, by the OUTPUT extension) has one row per (product,
tag), with the columns of the warehouse's model_tags: product_id, tag, tag_type, facet, score
(in [0, 1]), source (model, or refiner for a tag only the refiner gives), explanation (the
words of the text that most support the tag, by word occlusion, joined by " | "),
tagger_version and refiner_version. It is written to a temporary file and renamed into place
when complete."""

EVAL_FILE_HELP = """\
The labelled file is a product file (see `tag-pipeline tag --help`) with one more column,
tags: the product's true tags as tag_type:tag entries separated by "|", e.g.
  category:T-Shirts|attribute/color:Blue|style:Slim Fit
An entry may name the facet after the tag type (attribute/color:Blue), and must when the
model knows the tag name in more than one facet of the type. Tag types: category, attribute,
scene, style. Labels of tags outside the model's label space are counted and left out, as in
training. The metrics are those of the model as `tag` and product_tags use it: the tagger
and the champion refiner where it applies to that tagger version (--no-refiner: the tagger
alone, as tag_model_evaluation measures it on the test split). They are micro and macro
precision, recall and F1, samples-F1, P@1/3/5 and NDCG@5, per tag type and overall."""

MODEL_HELP = "registry alias (champion, challenger) or version number of the tagger"
EVAL_COLUMNS = ("micro_precision", "micro_recall", "micro_f1", "macro_f1", "samples_f1",
                "p_at_1", "p_at_3", "p_at_5", "ndcg_at_5", "n_samples")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _settings():
    """The environment's settings, refused (naming ``tag-pipeline relocate``) when the project
    home was copied or moved and not relocated yet."""
    from tag_pipeline.lib.home import check_home
    from tag_pipeline.lib.settings import read_settings

    settings = read_settings()
    check_home(settings.home)
    return settings


def _mlflow():
    """The MLflow store of the environment, with the ``mlflow`` module pointed at it."""
    from tag_pipeline.lib.cli.doctor import sqlite_store_missing
    from tag_pipeline.lib.settings import MlflowStore

    mlflow = MlflowStore.of(_settings())
    for uri in (mlflow.tracking_uri, mlflow.registry_uri or mlflow.tracking_uri):
        missing = sqlite_store_missing(uri)
        if missing is not None:  # MLflow would create an empty store there
            raise RuntimeError(f"no MLflow store at {missing} (MLFLOW_TRACKING_URI={uri}); "
                               "run model_job first, or point MLFLOW_TRACKING_URI at the store")
    mlflow.activate()
    return mlflow


def _load_models(args: argparse.Namespace):
    from tag_pipeline.lib.cli.quiet import filtered_stderr

    mlflow = _mlflow()
    # TensorFlow is imported and runs its first operations here: keep its CUDA probes quiet
    with filtered_stderr():
        from tag_pipeline.lib.cli.models import load_models

        return load_models(mlflow.client(), mlflow.registered_model_name,
                           mlflow.refiner_model_name, args.model,
                           use_refiner=not args.no_refiner)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _suggest(args: argparse.Namespace) -> int:
    import json

    import polars as pl

    from tag_pipeline.lib.cli.files import check_images
    from tag_pipeline.lib.cli.models import tag_products

    products = pl.DataFrame({"product_id": ["suggest"], "title": [args.title],
                             "description": [args.description or ""],
                             "image_path": [args.image]}, schema={
        "product_id": pl.Utf8, "title": pl.Utf8, "description": pl.Utf8, "image_path": pl.Utf8})
    # The image named on the command line is the user's own choice: by default its folder is
    # the image root; --image-root narrows it (as tag's does for a file of products).
    root = (Path(args.image_root).resolve() if args.image_root else
            (Path.cwd() / Path(args.image).expanduser()).resolve().parent if args.image
            else Path.cwd())
    products, problems = check_images(products, Path.cwd(), image_root=root)
    for problem in problems:
        status = "outside the image root" if problem.status == "outside_root" \
            else problem.status
        _warn(f"image {problem.path} is {status} ({problem.detail}); tagged from the "
              "text only")
    models = _load_models(args)
    tags = tag_products(models, products).drop("product_id", "tagger_version",
                                               "refiner_version")
    image = {"path": args.image, "used": products["image_path"][0] is not None} \
        if args.image else None
    if not (args.title or "").strip() and not (args.description or "").strip():
        _warn("the product has no text (title and description are blank): "
              + ("tagged from its image alone" if image and image["used"]
                 else "nothing to tag it from, so it gets no tags"))
    if args.json:
        print(json.dumps({
            "tagger": {"name": models.tagger_name, "version": models.tagger_version,
                       "reference": args.model},
            "refiner": {"name": models.refiner_name, "version": models.refiner_version,
                        "reason": models.refiner_reason},
            "image": image,
            "tags": tags.to_dicts(),
        }, ensure_ascii=False, indent=2))
        return 0
    from tag_pipeline.lib.warehouse import markdown_table

    print(f"model: {models.describe()}")
    if image is not None:
        print(f"image: {args.image} ({'used' if image['used'] else 'not usable; text only'})")
    print(markdown_table(tags.select("tag_type", "facet", "tag", pl.col("score").round(3),
                                     "source", "explanation")))
    return 0


def _progress(total: int):
    """A progress bar on stderr (tqdm when installed), or None."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="product", file=sys.stderr, dynamic_ncols=True)


# Bad lines named one by one on stderr before the rest are only counted (all are in --rejects).
_BAD_ROWS_SHOWN = 20


def _tag(args: argparse.Namespace) -> int:
    import numpy as np

    from tag_pipeline.lib.cli.files import (
        OPTIONAL_COLUMNS,
        AtomicWriter,
        ProductFile,
        check_images,
        file_format,
        write_bad_rows,
    )
    from tag_pipeline.lib.cli.models import TAG_COLUMNS, tag_products
    from tag_pipeline.lib.models.inputs import has_usable_text

    source, target = Path(args.input).resolve(), Path(args.output).resolve()
    image_root = Path(args.image_root).resolve() if args.image_root else source.parent
    file_format(target)  # an unusable output name fails before the model loads
    rejects = Path(args.rejects).resolve() if args.rejects else None
    if rejects is not None:
        file_format(rejects)
    base_dir = source.parent
    if args.profile:
        from tag_pipeline.lib.cli.profile_file import ProfileFile

        profile = _profile_loader(args.profile)[0]()
        opened = ProfileFile(profile, source)
        base_dir = opened.profile.root  # image references are relative to the catalog's root
        if not args.image_root:
            image_root = profile.image_root
    else:
        opened = ProductFile(source, optional=None)
    # a missing file, a bad header or a missing column fails before the model loads
    with opened as products_file:
        models = _load_models(args)
        features = tuple(c.name for c in models.bundle.feature_columns)
        text_columns = models.bundle.text_columns
        bar = _progress(products_file.rows)

        def say(message: str) -> None:
            if bar is not None:  # printed above the bar, not through it
                bar.write(f"warning: {message}", file=sys.stderr)
            else:
                _warn(message)

        bad = products_file.bad_rows
        for row in bad[:_BAD_ROWS_SHOWN]:
            say(row.message(source))
        if len(bad) > _BAD_ROWS_SHOWN:
            say(f"{source}: {len(bad) - _BAD_ROWS_SHOWN:,} more bad line(s) not shown"
                + (f"; all are in {rejects}" if rejects else "; --rejects FILE lists them all"))
        if rejects is not None:
            write_bad_rows(rejects, bad)
        missing = [c for c in features if c not in products_file.columns]
        if missing:
            say(f"{source} has no column(s) {missing}, which the model reads as catalog "
                "features; they are taken as empty")
        # the model reads the inputs it was trained on: a description it never saw is left out
        read = (*OPTIONAL_COLUMNS, *features)
        if (text_columns is not None and "description" not in text_columns
                and "description" in products_file.columns):
            read = tuple(c for c in read if c != "description")
            say(f"{source} has descriptions, but the model was trained on products without "
                "one; they are left out, as in training (train on a catalog with "
                "descriptions to use them)")
        products = problems = empty = 0
        try:
            with AtomicWriter(target, TAG_COLUMNS) as writer:
                for batch in products_file.batches(args.batch_size, read):
                    batch, found = check_images(batch, base_dir, image_root=image_root)
                    for problem in found:
                        say(problem.message(source))
                    no_image = (batch["image_path"].is_null().to_numpy()
                                if "image_path" in batch.columns
                                else np.ones(batch.height, bool))
                    nothing = ~has_usable_text(batch) & no_image
                    for row in np.flatnonzero(nothing).tolist():
                        say(f"{source} line {batch['_line'][row]} (product "
                            f"{batch['product_id'][row]}): no text and no image; no tags")
                    empty += int(nothing.sum())
                    writer.write(tag_products(models, batch.drop("_line"),
                                              explain=not args.no_explain))
                    products += batch.height
                    problems += len(found)
                    if bar is not None:
                        bar.update(batch.height)
        finally:
            if bar is not None:
                bar.close()
    print(f"wrote {writer.rows:,} tags of {products:,} products to {target}")
    print(f"model: {models.describe()}")
    if bad:
        where = f"; listed in {rejects}" if rejects else ""
        print(f"{len(bad):,} line(s) of {source.name} could not be used and were not "
              f"tagged{where}")
    if problems:
        print(f"{problems:,} product(s) had an unusable image and were tagged from their text")
    if empty:
        print(f"{empty:,} product(s) had neither text nor an image and got no tags")
    return 0


def _format_metric(value: float) -> str:
    return "n/a" if value != value else f"{value:.4f}"  # NaN: undefined, see lib/metrics


def _eval(args: argparse.Namespace) -> int:
    import json

    import polars as pl

    from tag_pipeline.lib.cli.evaluation import TAGS_COLUMN, evaluate_file
    from tag_pipeline.lib.cli.files import REQUIRED_COLUMNS, ProductFile
    from tag_pipeline.lib.warehouse import markdown_table

    path = Path(args.file).resolve()
    if args.profile:
        from tag_pipeline.lib.cli.evaluation import evaluate_profile_file
        from tag_pipeline.lib.cli.profile_file import ProfileFile

        profile = _profile_loader(args.profile)[0]()
        with ProfileFile(profile, path) as products:  # fails before the model loads
            models = _load_models(args)
            for row in products.bad_rows[:_BAD_ROWS_SHOWN]:
                _warn(row.message(path).replace("not tagged", "not scored"))
            result = evaluate_profile_file(models.bundle, products, args.batch_size,
                                           profile.image_root, models.refiner)
    else:
        # a missing or unreadable file fails before the model loads
        with ProductFile(path, (*REQUIRED_COLUMNS, TAGS_COLUMN), ()):
            pass
        models = _load_models(args)
        result = evaluate_file(models.bundle, path, args.batch_size, models.refiner)
    for problem in result.image_problems:
        _warn(problem.message(path))
    if args.json:
        clean = {scope: {k: (None if v != v else v) for k, v in values.items()}
                 for scope, values in result.metrics.items()}
        print(json.dumps({"model": models.tagger_name, "version": models.tagger_version,
                          "reference": args.model, "refiner": models.refiner_name,
                          "refiner_version": models.refiner_version,
                          "refiner_reason": models.refiner_reason, "file": str(path),
                          "products": result.products, "labels": result.labels,
                          "unknown_labels": result.unknown_labels, "metrics": clean},
                         ensure_ascii=False, indent=2))
        return 0
    print(f"{models.tagger_name} v{models.tagger_version} ({args.model}) on {path}: "
          f"{result.products:,} products, {result.labels:,} labels scored, "
          f"{result.unknown_labels:,} outside the model's label space")
    print(f"model: {models.describe()}")
    rows = [{"scope": scope, **{c: (str(int(values[c])) if c == "n_samples"
                                    else _format_metric(values[c])) for c in EVAL_COLUMNS}}
            for scope, values in sorted(result.metrics.items(), key=lambda kv: kv[0] == "all")]
    print(markdown_table(pl.DataFrame(rows)))
    return 0


def _actor(args: argparse.Namespace) -> str:
    import getpass

    return args.actor or getpass.getuser()


def _promote(args: argparse.Namespace) -> int:
    from tag_pipeline.lib.cli.models import resolve_version
    from tag_pipeline.lib.registry import CHAMPION, move_alias

    mlflow = _mlflow()
    client, name = mlflow.client(), mlflow.registered_model_name
    version = resolve_version(client, name, args.version)
    previous = move_alias(client, name, CHAMPION, version, actor=_actor(args),
                          reason=args.reason)
    print(f"{name} {CHAMPION}: v{previous or 'none'} -> v{version}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from tag_pipeline.lib.registry import CHAMPION, rollback

    mlflow = _mlflow()
    name = mlflow.registered_model_name
    current, previous = rollback(mlflow.client(), name, actor=_actor(args), reason=args.reason)
    print(f"{name} {CHAMPION}: v{current} -> v{previous}")
    return 0


def _dead_runs(dagster_home: Path) -> list[tuple[str, str, str]]:
    """(run id, job, detail) of the instance's STARTED runs whose worker process is gone."""
    if not (dagster_home / "dagster.yaml").is_file():
        return []
    import dagster as dg

    from tag_pipeline.run_launcher import worker_state

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.get_run_records(
            dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        dead = []
        for record in records:
            state = worker_state(instance, record.dagster_run)
            if not state.alive:
                dead.append((record.dagster_run.run_id, record.dagster_run.job_name,
                             state.detail))
        return dead


def _profile_loader(name: str | None):
    """A loader of ``name`` (a shipped profile or a YAML path; default: the configured
    profile) with the configured folders for its placeholders, and the name it reads."""
    from tag_pipeline.lib.catalog.profile import load_profile
    from tag_pipeline.lib.settings import read_settings

    settings = read_settings()
    chosen = name or settings.profile
    placeholders = {"landing": str(settings.landing_dir),
                    "shared_data": str(settings.shared_data_dir)}
    return (lambda: load_profile(chosen, placeholders)), chosen


def _profile_check(args: argparse.Namespace) -> int:
    from tag_pipeline.lib.catalog.inspect import inspect_profile, render
    from tag_pipeline.lib.settings import SQL_ROOT

    load, chosen = _profile_loader(args.profile)
    report = inspect_profile(load, SQL_ROOT, check_images=not args.no_images,
                             samples=args.samples)
    print(render(report, chosen))
    return 1 if report.errors else 0


def _doctor(_: argparse.Namespace) -> int:
    from tag_pipeline.lib.cli import doctor
    from tag_pipeline.lib.settings import SQL_ROOT, MlflowStore, read_pseudonym_key, read_settings

    settings = read_settings()  # not checked: check_home reports a moved home
    home, dagster_home = settings.home, settings.dagster_home
    mlflow = MlflowStore.of(settings)
    key_env, key_file = settings.pseudonym_key_env, settings.pseudonym_key_file

    def client():
        mlflow.activate()
        return mlflow.client()

    checks = [doctor.check_home(home), doctor.check_warehouse(settings.duckdb_path)]
    checks += doctor.check_mlflow(client, mlflow.tracking_uri,
                                  mlflow.registry_uri or mlflow.tracking_uri,
                                  mlflow.registered_model_name, mlflow.refiner_model_name)
    checks += [
        doctor.check_dagster(dagster_home),
        doctor.check_stuck_runs(_dead_runs(dagster_home)),
        doctor.check_pseudonym_key(key_env, os.environ.get(key_env), key_file,
                                   lambda: read_pseudonym_key(key_env, key_file)),
        doctor.check_landing(settings.landing_dir),
        doctor.check_profile(*_profile_loader(None), SQL_ROOT),
    ]
    for check in checks:
        print(check.line())
    failed = sum(c.status == doctor.FAIL for c in checks)
    warned = sum(c.status == doctor.WARN for c in checks)
    print(f"{len(checks)} checks: {failed} failed, {warned} warned")
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tag-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the project home folder and the Dagster instance file")
    demo = sub.add_parser("demo", help="write the demo catalog's landing files to a folder")
    demo.add_argument("--out", required=True, help="folder to write the files into")
    demo.add_argument("--products", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--shape", choices=("shop", "marketplace"), default="shop",
                      help="shop: the embedded bilingual demo catalog; marketplace: a raw "
                           "marketplace-shaped export (headerless CSV, gzip TSV, JSON category "
                           "trees, '=>' specifications) with the profile that reads it")
    sub.add_parser("summary", help="print the warehouse's row accounting and label counts")

    def model_options(command: argparse.ArgumentParser, refiner: bool = True) -> None:
        command.add_argument("--model", default="champion", help=MODEL_HELP +
                             " (default: champion)")
        if refiner:
            command.add_argument("--no-refiner", action="store_true",
                                 help="tag with the tagger alone, even when the champion "
                                      "refiner applies to it")

    raw = argparse.RawDescriptionHelpFormatter
    suggest = sub.add_parser(
        "suggest", help="tags for one product, with scores and explanations",
        description="Tag one product with a registered tagger and, when it applies to that "
                    "version, the champion refiner (as product_tags does).")
    suggest.add_argument("--title", required=True)
    suggest.add_argument("--description", default="")
    suggest.add_argument("--image", help="image file (relative to the current folder)")
    suggest.add_argument("--image-root", help="folder the image must lie in (default: the "
                                              "image's own folder)")
    model_options(suggest)
    suggest.add_argument("--json", action="store_true", help="print JSON")
    tag = sub.add_parser("tag", help="tag a file of products into a file of tags",
                         formatter_class=raw, description=PRODUCT_FILE_HELP,
                         epilog=TAG_FILE_HELP)
    tag.add_argument("input", help="product file (.csv, .jsonl, .ndjson or .parquet)")
    tag.add_argument("output", help="tag file to write (.csv, .jsonl, .ndjson or .parquet)")
    model_options(tag)
    tag.add_argument("--batch-size", type=int, default=512, help="products read and tagged "
                                                                 "at once (default: 512)")
    tag.add_argument("--image-root", help="folder every image_path must resolve inside; one "
                                          "outside it is never opened and the product is "
                                          "tagged from its text (default: the product "
                                          "file's folder)")
    tag.add_argument("--profile", help="read INPUT as a raw export of this catalog profile "
                                       "(shipped name or YAML path): its format, columns, "
                                       "cleaning and feature columns, as catalog_job reads "
                                       "it; image paths then start at the file's folder, "
                                       "inside the profile's image root")
    tag.add_argument("--rejects", metavar="FILE",
                     help="also write the lines that could not be used (line, reason, detail, "
                          "raw_line) to FILE (.csv, .jsonl or .parquet)")
    tag.add_argument("--no-explain", action="store_true",
                     help="leave out explanations (each costs about one forward pass per "
                          "word of the product tried)")
    evaluate = sub.add_parser("eval", help="metrics of a registry version on a labelled file",
                              formatter_class=raw, description=EVAL_FILE_HELP)
    evaluate.add_argument("file", help="labelled product file (.csv, .jsonl or .parquet)")
    evaluate.add_argument("--model", default="champion", help=MODEL_HELP +
                          " (default: champion)")
    evaluate.add_argument("--batch-size", type=int, default=512)
    evaluate.add_argument("--profile", help="read FILE as a raw export of this catalog profile "
                                            "(shipped name or YAML path); its own tag columns, "
                                            "read by the profile's rules, are the truth (no "
                                            "tags column)")
    evaluate.add_argument("--no-refiner", action="store_true",
                          help="measure the tagger alone (default: with the refiner that "
                               "`tag` and product_tags apply to it, where one does)")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    promote = sub.add_parser("promote", help="point the tagger's champion alias at a version")
    promote.add_argument("version", help="version number (or an alias such as challenger)")
    rollback = sub.add_parser("rollback", help="point champion back at the version it replaced")
    for command in (promote, rollback):
        command.add_argument("--reason", required=True, help="why; recorded on the version")
        command.add_argument("--actor", help="who; recorded on the version (default: your "
                                             "user name)")
    serving = sub.add_parser("serving-model", help="print the MLflow model URI that answers as "
                                                   "tag and product_tags do (make serve serves "
                                                   "it)")
    serving.add_argument("--model", default="champion", help=MODEL_HELP +
                         " (default: champion)")
    sub.add_parser("relocate", help="after copying or moving the project home: point its "
                                    "MLflow store and warehouse at the new place")
    sub.add_parser("doctor", help="check the project home, warehouse, MLflow, Dagster "
                                  "instance, pseudonym key, landing folders and the "
                                  "catalog profile")
    profile = sub.add_parser("profile", help="check a catalog profile against its files")
    profile_sub = profile.add_subparsers(dest="profile_command", required=True)
    check = profile_sub.add_parser(
        "check", help="read the files as catalog_job would, without writing anything",
        description="Read the profile's files as catalog_job would, into a private in-memory "
                    "warehouse (nothing of the project is written), and print the column "
                    "map, the files' row accounting, sample products, the labels per facet "
                    "with counts and examples, and every error and suspicion. Exits 1 on "
                    "errors.")
    check.add_argument("profile", nargs="?", help="shipped profile name or YAML path "
                                                  "(default: the configured profile, "
                                                  "TAG_PIPELINE_PROFILE)")
    check.add_argument("--no-images", action="store_true",
                       help="do not open image files (faster; every image counts as missing)")
    check.add_argument("--samples", type=int, default=5, help="sample products to show")
    return parser


HANDLERS = {"init": _init, "demo": _demo, "summary": _summary, "suggest": _suggest,
            "tag": _tag, "eval": _eval, "promote": _promote, "rollback": _rollback,
            "doctor": _doctor, "relocate": _relocate, "serving-model": _serving_model,
            "profile": _profile_check}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Quiet TensorFlow's C++ start-up lines and MLflow's download bars (the tag command draws
    # its own progress bar); an explicit setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        return HANDLERS[args.command](args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line, not a traceback
        print(f"error: {_first_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
