import subprocess
import sys

from tag_pipeline.definitions import defs

ASSETS = {"raw_products", "raw_product_rejects", "ingest_files", "label_rules", "style_lexicon",
          "stg_products", "image_checks", "cleaned_products", "rejected_products",
          "row_accounting", "product_labels", "tag_taxonomy", "product_features", "tag_model",
          "tag_model_evaluation"}
CHECKED = ASSETS - {"tag_model", "tag_model_evaluation"}


def test_definitions_have_every_asset_check_and_job():
    graph = defs.get_repository_def().asset_graph
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == ASSETS
    checks = {k.name for k in graph.asset_check_keys}
    assert checks == {f"{a}_expectations" for a in CHECKED} | {"tag_taxonomy_covers_labels"}
    for job in ("catalog_job", "model_job", "promote_model_job", "rollback_model_job"):
        assert defs.resolve_job_def(job) is not None
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups == {"ingest", "cleaning", "labels", "features", "model"}


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
