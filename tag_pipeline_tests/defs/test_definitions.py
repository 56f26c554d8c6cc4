import subprocess
import sys
from pathlib import Path

import tag_pipeline
from tag_pipeline.definitions import defs

ASSETS = {"raw_products", "raw_product_rejects", "ingest_files", "label_rules", "style_lexicon",
          "stg_products", "image_checks", "cleaned_products", "rejected_products",
          "row_accounting", "product_labels", "tag_taxonomy", "product_features", "tag_model",
          "tag_model_evaluation", "tag_refiner", "product_tags", "product_tag_history",
          "untagged_products", "product_tags_export", "model_tags", "raw_sales", "raw_feedback",
          "sales_by_product_period", "sales_by_product_window", "sales_season_peaks",
          "behaviour_tags", "sales_daily", "catalog_tag_disagreements"}
CHECKED = ASSETS - {"tag_model", "tag_model_evaluation", "untagged_products",
                    "product_tags_export", "tag_refiner"}


def test_definitions_have_every_asset_check_and_job():
    graph = defs.get_repository_def().asset_graph
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == ASSETS
    checks = {k.name for k in graph.asset_check_keys}
    assert checks == ({f"{a}_expectations" for a in CHECKED}
                      | {"tag_taxonomy_covers_labels", "tag_refiner_ablation_expectations",
                         "product_tags_consistent", "product_tags_cover_catalog",
                         "product_tags_versions_registered"})
    for job in ("catalog_job", "model_job", "tags_job", "retag_job", "retrain_job", "sales_job",
                "feedback_job", "sales_daily_job", "promote_model_job", "rollback_model_job",
                "restore_tags_job"):
        assert defs.resolve_job_def(job) is not None
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups == {"ingest", "cleaning", "labels", "features", "model", "refiner", "tags",
                      "sales", "feedback", "sales_history"}
    repository = defs.get_repository_def()
    assert {s.name for s in repository.sensor_defs} >= {
        "catalog_files_sensor", "champion_alias_sensor", "run_failure_sensor",
        "sales_files_sensor", "feedback_files_sensor", "feedback_retrain_sensor"}
    assert {s.name for s in repository.schedule_defs} == {
        "retag_job_schedule", "retrain_job_schedule", "sales_daily_schedule"}
    # Only sales_daily is partitioned, and only its own job carries partition keys.
    partitioned = {k.to_user_string() for k in graph.get_all_asset_keys()
                   if graph.get(k).partitions_def is not None}
    assert partitioned == {"sales_daily"}
    assert defs.resolve_job_def("sales_daily_job").partitions_def is not None
    assert defs.resolve_job_def("sales_job").partitions_def is None


def test_tag_tables_depend_on_the_models_and_the_catalog():
    graph = defs.get_repository_def().asset_graph
    by_name = {k.to_user_string(): k for k in graph.get_all_asset_keys()}
    parents = {k.to_user_string() for k in graph.get(by_name["product_tags"]).parent_keys}
    assert parents == {"cleaned_products", "product_labels", "tag_taxonomy", "model_tags",
                       "raw_feedback", "behaviour_tags"}
    model = {k.to_user_string() for k in graph.get(by_name["model_tags"]).parent_keys}
    assert model == {"cleaned_products", "tag_model_evaluation", "tag_refiner"}
    untagged = {k.to_user_string() for k in graph.get(by_name["untagged_products"]).parent_keys}
    assert untagged == {"cleaned_products", "product_tags"}


def test_sql_model_dependencies_come_from_refs():
    graph = defs.get_repository_def().asset_graph
    parents = {k.to_user_string() for k in graph.get(
        next(k for k in graph.get_all_asset_keys() if k.to_user_string() == "cleaned_products")
    ).parent_keys}
    assert parents == {"stg_products", "image_checks"}


def test_loading_definitions_does_not_import_tensorflow_or_gx():
    code = ("import sys, tag_pipeline.definitions; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'great_expectations', 'keras', 'mlflow')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def _nodes_by_resource():
    """(name, pools, required resource keys) of every op behind an asset, check or op job."""
    repository = defs.get_repository_def()
    seen = {}
    for job in repository.get_all_jobs():
        for node in job.graph.iterate_op_defs():
            seen[node.name] = (node.pools, node.required_resource_keys)
    return seen


def test_every_step_that_opens_the_warehouse_is_in_its_pool_and_mlflow_only_jobs_hold_none():
    from tag_pipeline.defs.policies import WAREHOUSE_POOL

    nodes = _nodes_by_resource()
    opening = {name for name, (_, keys) in nodes.items() if "duckdb" in keys}
    assert {"tag_model", "tag_refiner", "restore_product_tags",
            "cleaned_products_cleaned_products_expectations"} <= opening
    missing = sorted(name for name in opening if nodes[name][0] != {WAREHOUSE_POOL})
    assert missing == [], f"ops that open DuckDB outside the {WAREHOUSE_POOL!r} pool: {missing}"
    # promotion and rollback touch only MLflow: they must not wait behind a training run
    for name in ("promote_model", "rollback_model"):
        assert "duckdb" not in nodes[name][1]
        assert nodes[name][0] == set(), (name, nodes[name][0])


def test_the_root_gives_every_asset_its_owner_and_no_module_names_it_again():
    from tag_pipeline.defs.policies import OWNERS

    graph = defs.get_repository_def().asset_graph
    ownerless = sorted(k.to_user_string() for k in graph.get_all_asset_keys()
                       if not set(OWNERS) <= set(graph.get(k).owners))
    assert ownerless == [], f"assets without the project's owners {OWNERS}: {ownerless}"
    defs_dir = Path(tag_pipeline.__file__).parent / "defs"
    naming = sorted(str(p.relative_to(defs_dir)) for p in defs_dir.rglob("*.py")
                    if "OWNERS" in p.read_text(encoding="utf-8") and p.name != "policies.py")
    assert naming == [], f"owners are applied by tag_pipeline/definitions.py only: {naming}"


def test_sql_models_carry_the_hash_of_their_sql_as_code_version(tmp_path):
    from tag_pipeline.defs.sql_models import file_code_version

    graph = defs.get_repository_def().asset_graph
    by_name = {k.to_user_string(): graph.get(k) for k in graph.get_all_asset_keys()}
    versions = {name: by_name[name].code_version for name in
                ("stg_products", "cleaned_products", "product_labels", "sales_daily")}
    assert all(v and len(v) == 16 for v in versions.values()), versions
    assert len(set(versions.values())) == len(versions)
    # an edit to the file (or to a macro) changes the version
    (tmp_path / "macros").mkdir()
    model = tmp_path / "m.sql"
    model.write_text("SELECT 1", encoding="utf-8")
    first = file_code_version(model, tmp_path)
    model.write_text("SELECT 2", encoding="utf-8")
    second = file_code_version(model, tmp_path)
    (tmp_path / "macros" / "x.sql").write_text("CREATE MACRO x() AS 1", encoding="utf-8")
    assert len({first, second, file_code_version(model, tmp_path)}) == 3
