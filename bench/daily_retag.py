"""The daily retag of a catalog where 1% of the products changed, next to a full retag of it:
wall and CPU seconds of each and their ratio (the issue's target: under 10%).

Setup, untimed (seconds printed): the scaled demo catalog of ``--products`` rows is written by
a separate process (``write_scaled_catalog``; about 3% of the rows are newer versions of a
product, so there are somewhat fewer cleaned products than rows), then ingested, cleaned and
labelled on a warehouse file with DuckDB's memory_limit as in production
(``run_catalog_chain``). The event tables (``ensure_event_tables``: empty raw_sales and
raw_feedback) and the behaviour models on them (empty behaviour_tags) are built the way the
pipeline builds them. A tagger is trained on the first ``--train-products`` cleaned products
(``build_features`` + ``train_model``, 1 epoch, the tests' tiny dimensions unless
``--model default``) and saved as a bundle: a real Keras model does all the scoring.

Timed, each as one run of the ``product_tags`` asset does it (``defs/tags/assets.py``) with
its default config (``ProductTagsConfig``; flags change it), on a new connection that is
closed (checkpointed) at the end as the asset's DuckDB resource does: load the bundle,
``tag_catalog`` then ``refresh_product_tags`` (candidates rebuilt and written for the products
whose inputs changed; every product on a full retag). The tagger is used
without a refiner (the asset applies one only when one passed its gate).

1. full retag (``full_retag=True``) of the catalog, from empty tables;
2. the same full retag again, over the tags now in place (the denominator of the ratio: a
   full retag of a catalog that is already tagged);
3. untimed: 1% of the products change (``hash(product_id) % 100 = 0``: `` v2`` appended to
   the title in ``cleaned_products``, as a new catalog version would land);
4. daily retag (``full_retag=False``): must score exactly the changed products (checked);
5. daily retag with nothing changed (0 products scored): the floor of a daily run.

Wall time depends on what else the cores run; CPU time (``time.process_time``, all threads
of this process: TensorFlow's and DuckDB's) much less. Both are printed. With explanations
on (the default) the tiny tagger scored about 200 products/s on 2 cores (about 700 without),
so at 1,000,000 products each of the two full retags takes over an hour.

    nice -n 5 .venv/bin/python bench/daily_retag.py [--products 1000000]
        [--train-products 20000] [--model tiny|default] [--memory-limit 1GB] [--threads N]
        [--batch-size 4096] [--no-explain] [--explanation-max-words 16] [--one-full]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SQL_ROOT, peak_rss_mb, report, write_generated_catalog  # noqa: E402

from tag_pipeline.lib.catalog.chain import run_catalog_chain  # noqa: E402
from tag_pipeline.lib.catalog.profile import load_profile  # noqa: E402
from tag_pipeline.lib.events import behaviour_vars, ensure_event_tables  # noqa: E402
from tag_pipeline.lib.sql import discover_models, run_model, topological_order  # noqa: E402
from tag_pipeline.lib.tags.store import TagWriteResult  # noqa: E402
from tag_pipeline.lib.tags.tagging import (  # noqa: E402
    TaggingStats,
    refresh_product_tags,
    tag_catalog,
)

if TYPE_CHECKING:
    from tag_pipeline.lib.models.tagger import TaggerConfig

TAGGER_VERSION = "1"
# The tests' tagger (tag_pipeline_tests/support.py TINY_MODEL); "default" is the
# TagModelConfig defaults (defs/model/assets.py), both for 1 epoch.
TINY_MODEL = {"batch_size": 64, "embedding_dim": 16, "lstm_units": 8, "seq_len": 24,
              "image_size": 32, "vocab_size": 2000}
AT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # the first write; each run is a day later
CHANGED = "hash(product_id) % 100 = 0"  # the 1% of products that change


@dataclass(frozen=True)
class Run:
    """One timed run of the product_tags sequence: seconds (wall, CPU) per part."""

    name: str
    stats: TaggingStats
    write: TagWriteResult
    load: tuple[float, float]  # connect + load the bundle
    scoring: tuple[float, float]  # tag_catalog (scoring, explanations, model_tags)
    writing: tuple[float, float]  # candidate_view + write_product_tags
    close: tuple[float, float]  # closing the connection (checkpoint)
    rebuilt: int | None = None  # products whose candidates were rebuilt (None: all)

    @property
    def wall(self) -> float:
        return self.load[0] + self.scoring[0] + self.writing[0] + self.close[0]

    @property
    def cpu(self) -> float:
        return self.load[1] + self.scoring[1] + self.writing[1] + self.close[1]


class Clock:
    """Wall and CPU seconds since the last ``lap``."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return out


def connect(path: Path, args: argparse.Namespace) -> duckdb.DuckDBPyConnection:
    """A warehouse connection configured as the pipeline's DuckDB resource."""
    con = duckdb.connect(str(path), config={"memory_limit": args.memory_limit,
                                            "threads": args.threads})
    con.execute("SET enable_progress_bar = false")
    return con


def build_warehouse(tmp: Path, path: Path, args: argparse.Namespace) -> dict[str, float]:
    """Generate, ingest, clean and label the catalog; create the event and behaviour tables.
    Returns the seconds of each step (untimed setup)."""
    seconds: dict[str, float] = {}
    landing = tmp / "landing"
    started = time.perf_counter()
    write_generated_catalog(landing / "demo", args.products)
    seconds["generate"] = time.perf_counter() - started
    con = connect(path, args)
    started = time.perf_counter()
    run_catalog_chain(con, load_profile("demo", {"landing": str(landing)}), SQL_ROOT,
                      with_labels=True)
    seconds["ingest + clean + labels"] = time.perf_counter() - started
    started = time.perf_counter()
    ensure_event_tables(con)
    variables = behaviour_vars(AT.replace(tzinfo=None))
    for model in topological_order([m for m in discover_models(SQL_ROOT)
                                    if m.folder == "behaviour"]):
        run_model(con, model, SQL_ROOT, variables)
    seconds["event + behaviour tables"] = time.perf_counter() - started
    con.close()
    return seconds


def tagger_config(args: argparse.Namespace) -> TaggerConfig:
    from tag_pipeline.lib.models.tagger import TaggerConfig

    settings = TINY_MODEL if args.model == "tiny" else {}
    return TaggerConfig(**settings, epochs=1, patience=1)


def train_bundle(path: Path, folder: Path, args: argparse.Namespace) -> tuple[Path, str]:
    """Train a tagger on the first ``--train-products`` cleaned products and save its bundle.
    Returns the bundle folder and a description."""
    from tag_pipeline.lib.models.bundle import TaggerBundle, save_bundle
    from tag_pipeline.lib.models.training import build_features, train_model

    con = connect(path, args)
    products = con.sql(
        "SELECT product_id, title, description, image_path FROM cleaned_products "
        f"ORDER BY product_id LIMIT {int(args.train_products)}").pl()
    labels = con.sql(
        "SELECT l.product_id, l.tag, l.tag_type, l.facet FROM product_labels AS l "
        "SEMI JOIN (SELECT product_id FROM cleaned_products ORDER BY product_id "
        f"LIMIT {int(args.train_products)}) AS p USING (product_id)").pl()
    con.close()
    config = tagger_config(args)
    features = build_features(products, labels)
    trained = train_model(features, config)
    bundle = TaggerBundle(model=trained.model, space=trained.space, vocab=trained.vocab,
                          thresholds=trained.thresholds, config=config)
    params = trained.model.count_params()
    heads = len(trained.space.heads)
    tags = sum(h.size for h in trained.space.heads)
    return save_bundle(bundle, folder), (f"{args.model} ({params / 1e6:.2f}M parameters, "
                                         f"{heads} heads, {tags} tags)")


def timed_run(name: str, path: Path, bundle_dir: Path, args: argparse.Namespace, *,
              full_retag: bool, day: int) -> Run:
    """One product_tags asset run: connect, load the tagger, tag_catalog,
    refresh_product_tags, close."""
    from tag_pipeline.lib.models.bundle import load_bundle

    clock = Clock()
    con = connect(path, args)
    bundle = load_bundle(bundle_dir)
    load = clock.lap()
    stats = tag_catalog(con, bundle, None, tagger_version=TAGGER_VERSION, refiner_version=None,
                        sql_root=SQL_ROOT, full_retag=full_retag, batch_size=args.batch_size,
                        explain=args.explain, explanation_words=args.explanation_words,
                        explanation_max_words=args.explanation_max_words)
    scoring = clock.lap()
    refresh = refresh_product_tags(con, SQL_ROOT, include_catalog_tags=args.include_catalog_tags,
                                   run_id=f"bench-{day}", at=AT + timedelta(days=day),
                                   full=full_retag)
    write, rebuilt = refresh.write, refresh.rebuilt_products
    writing = clock.lap()
    con.close()
    close = clock.lap()
    run = Run(name=name, stats=stats, write=write, load=load, scoring=scoring,
              writing=writing, close=close, rebuilt=rebuilt)
    print(f"{name}: {run.wall:.1f} s (CPU {run.cpu:.1f} s), scored {stats.products:,}",
          flush=True)
    return run


def change_products(path: Path, args: argparse.Namespace) -> int:
    """Append ' v2' to the title of 1% of the cleaned products; return how many changed."""
    con = connect(path, args)
    changed = con.execute(f"SELECT count(*) FROM cleaned_products WHERE {CHANGED}").fetchone()[0]
    con.execute(f"UPDATE cleaned_products SET title = title || ' v2' WHERE {CHANGED}")
    con.close()
    return int(changed)


def lines(run: Run) -> list[tuple[str, str]]:
    """The report rows of one run."""
    stats, write = run.stats, run.write
    rate = f"{stats.products / run.scoring[0]:,.0f} products/s" if stats.products else "-"
    return [
        (run.name, f"{run.wall:7.1f} s wall, CPU {run.cpu:7.1f} s; scored {stats.products:,} "
                   f"of {stats.catalog_products:,} products"),
        ("  load tagger (+ connect)", f"{run.load[0]:7.1f} s, CPU {run.load[1]:.1f} s"),
        ("  scoring (tag_catalog)", f"{run.scoring[0]:7.1f} s, CPU {run.scoring[1]:.1f} s  "
                                    f"({rate}; {stats.model_tags:,} model tags, "
                                    f"{stats.explained_tags:,} explained)"),
        ("  write (candidates + store)", f"{run.writing[0]:7.1f} s, CPU {run.writing[1]:.1f} s"
                                         f"  (candidates rebuilt for "
                                         f"{'all' if run.rebuilt is None else f'{run.rebuilt:,}'}"
                                         f" products; {write.rows:,} tags on {write.products:,} "
                                         f"products; history +{write.history_rows:,}: added "
                                         f"{write.added:,}, changed {write.changed:,}, removed "
                                         f"{write.removed:,})"),
        ("  close (checkpoint)", f"{run.close[0]:7.1f} s, CPU {run.close[1]:.1f} s"),
    ]


def ratio(part: Run, whole: Run) -> str:
    return f"{part.wall / whole.wall:.1%} wall, {part.cpu / whole.cpu:.1%} CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=1_000_000,
                        help="catalog rows generated (newer versions included)")
    parser.add_argument("--train-products", type=int, default=20_000,
                        help="cleaned products the tagger is trained on (untimed)")
    parser.add_argument("--model", choices=("tiny", "default"), default="tiny",
                        help="tagger dimensions: the tests' TINY_MODEL or TagModelConfig's")
    parser.add_argument("--memory-limit", default="1GB",
                        help="DuckDB memory_limit, as TAG_PIPELINE_DUCKDB_MEMORY_LIMIT (1GB)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2,
                        help="DuckDB threads, as TAG_PIPELINE_DUCKDB_THREADS (cores)")
    parser.add_argument("--one-full", action="store_true",
                        help="time one full retag (from empty) instead of two")
    defaults = parser.add_argument_group("product_tags config (ProductTagsConfig defaults)")
    defaults.add_argument("--batch-size", type=int, default=4096)
    defaults.add_argument("--explain", action=argparse.BooleanOptionalAction, default=True)
    defaults.add_argument("--explanation-words", type=int, default=2)
    defaults.add_argument("--explanation-max-words", type=int, default=16)
    defaults.add_argument("--include-catalog-tags", action=argparse.BooleanOptionalAction,
                          default=True)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tp_bench_retag_") as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "warehouse.duckdb"
        setup = build_warehouse(tmp, path, args)
        con = connect(path, args)
        catalog = con.execute("SELECT count(*) FROM cleaned_products").fetchone()[0]
        labels = con.execute("SELECT count(*) FROM product_labels").fetchone()[0]
        images = con.execute("SELECT count(*) FROM cleaned_products "
                             "WHERE image_path IS NOT NULL").fetchone()[0]
        con.close()
        print(f"setup: {catalog:,} cleaned products, "
              + ", ".join(f"{k} {v:.1f} s" for k, v in setup.items()), flush=True)

        started = time.perf_counter()
        bundle_dir, model = train_bundle(path, tmp / "bundle", args)
        train_s = time.perf_counter() - started
        print(f"tagger: {model}, trained in {train_s:.1f} s", flush=True)

        first = timed_run("full retag, from empty", path, bundle_dir, args,
                          full_retag=True, day=0)
        # --one-full: the first full retag is the denominator (saves one full retag's time)
        full = first if args.one_full else timed_run(
            "full retag, tags in place", path, bundle_dir, args, full_retag=True, day=1)
        started = time.perf_counter()
        changed = change_products(path, args)
        change_s = time.perf_counter() - started
        daily = timed_run("daily retag, 1% changed", path, bundle_dir, args,
                          full_retag=False, day=2)
        if daily.stats.products != changed:
            raise SystemExit(f"the daily retag scored {daily.stats.products:,} products, "
                             f"but {changed:,} changed")
        floor = timed_run("daily retag, nothing changed", path, bundle_dir, args,
                          full_retag=False, day=3)
        if floor.stats.products != 0:
            raise SystemExit(f"the daily retag with nothing changed scored "
                             f"{floor.stats.products:,} products")
        size_mb = path.stat().st_size / 1e6

    print()
    report([
        ("catalog", f"{args.products:,} rows generated -> {catalog:,} cleaned products "
                    f"({images:,} with an image), {labels:,} catalog labels"),
        ("setup (untimed)", ", ".join(f"{k} {v:.1f} s" for k, v in setup.items())),
        ("tagger (untimed)", f"{model}, 1 epoch on the first {args.train_products:,} "
                             f"products: {train_s:.1f} s; no refiner"),
        ("config", f"batch_size {args.batch_size}, explain {args.explain} (words "
                   f"{args.explanation_words}, max {args.explanation_max_words}), "
                   f"catalog tags {args.include_catalog_tags}"),
        *lines(first),
        *([] if full is first else lines(full)),
        ("1% change (untimed)", f"{changed:,} products ({changed / catalog:.2%}), "
                                f"{change_s:.1f} s"),
        *lines(daily),
        *lines(floor),
        ("daily / full retag", f"{ratio(daily, full)}; target under 10%"),
        *([] if full is first else [("daily / full retag from empty", ratio(daily, first))]),
        ("nothing changed / full retag", ratio(floor, full)),
        ("warehouse file", f"{size_mb:,.0f} MB"),
        ("load average (1 min)", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"),
        ("peak RSS", f"{peak_rss_mb():,.0f} MB (DuckDB memory_limit {args.memory_limit}, "
                     f"threads {args.threads})"),
    ])


if __name__ == "__main__":
    main()
