import subprocess
import sys

from tag_pipeline.definitions import defs

ASSETS = {"raw_products", "raw_product_rejects", "ingest_files", "label_rules", "style_lexicon",
          "stg_products", "image_checks", "cleaned_products", "rejected_products",
          "row_accounting", "product_labels", "tag_taxonomy", "product_features", "tag_model",
          "tag_model_evaluation", "tag_refiner", "product_tags", "product_tag_history",
          "untagged_products", "product_tags_export", "model_tags", "raw_sales", "raw_feedback",
          "sales_by_product_period", "sales_by_product_window", "sales_season_peaks",
          "behaviour_tags", "sales_daily"}
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
