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
# DuckDB allows one writing process per database file: runs queue and start one at a time.
run_queue:
  max_concurrent_runs: 1
"""

POSTGRES_YAML = """\
# Dagster's run, event and schedule storage in Postgres (needs dagster-postgres installed).
storage:
  postgres:
    postgres_url:
      env: TAG_PIPELINE_DAGSTER_PG_URL
"""


def _init(_: argparse.Namespace) -> int:
    from tag_pipeline.defs.resources import build_resources, project_home

    home = project_home()
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or home / "dagster")
    resources = build_resources()
    landing = Path(resources["catalog"].landing_dir)
    for folder in (home, dagster_home, landing / "catalog", landing / "sales",
                   landing / "feedback"):
        folder.mkdir(parents=True, exist_ok=True)
    key_file = home / "secrets" / "pseudonym.key"
    if not key_file.exists() and not os.environ.get("TAG_PIPELINE_PSEUDONYM_KEY"):
        import secrets

        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_hex(32), encoding="utf-8")
    instance = dagster_home / "dagster.yaml"
    if not instance.exists():
        text = INSTANCE_YAML
        if os.environ.get("TAG_PIPELINE_DAGSTER_PG_URL"):
            text += POSTGRES_YAML
        instance.write_text(text, encoding="utf-8")
    print(f"project home:   {home}")
    print(f"DAGSTER_HOME:   {dagster_home}")
    print(f"warehouse:      {resources['duckdb'].database}")
    print(f"landing folder: {landing}")
    print(f"profile:        {resources['catalog'].profile}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from tag_pipeline.lib.catalog.demo import generate_demo_catalog

    manifest = generate_demo_catalog(Path(args.out), n_products=args.products, seed=args.seed)
    print(f"wrote {manifest.n_rows} rows ({manifest.n_products} products) to {args.out}")
    return 0


def _summary(_: argparse.Namespace) -> int:
    import duckdb

    from tag_pipeline.defs.resources import build_resources
    from tag_pipeline.lib.warehouse import counts_by, markdown_table, read_table, table_exists

    database = build_resources()["duckdb"].database
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
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tag-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the project home folder and the Dagster instance file")
    demo = sub.add_parser("demo", help="write the demo catalog's landing files to a folder")
    demo.add_argument("--out", required=True, help="folder to write the files into")
    demo.add_argument("--products", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=7)
    sub.add_parser("summary", help="print the warehouse's row accounting and label counts")
    args = parser.parse_args(argv)
    handlers = {"init": _init, "demo": _demo, "summary": _summary}
    try:
        return handlers[args.command](args)
    except Exception as exc:  # one clear line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
