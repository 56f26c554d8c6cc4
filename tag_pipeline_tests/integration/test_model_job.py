"""The model chain for real: a Dagster run trains on the demo catalog, logs to a sqlite MLflow
in tmp_path, registers the model and goes through the gate; promote and rollback jobs."""

from pathlib import Path

import dagster as dg
import pytest

from tag_pipeline.definitions import build_definitions
from tag_pipeline.defs.resources import (
    CatalogResource,
    ExportResource,
    MlflowResource,
    OperationsResource,
    PseudonymResource,
    WarehouseResource,
)
from tag_pipeline_tests.conftest import SHARED_DATA
from tag_pipeline_tests.project_home import gate_promoted, model_version

TINY = {"epochs": 1, "batch_size": 64, "embedding_dim": 16, "lstm_units": 8, "seq_len": 24,
        "image_size": 32, "vocab_size": 2000}


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
    result = run(defs, instance, "model_job", {"ops": {"tag_model": {"config": TINY}}})
    assert result.success
    if not gate_promoted(result):
        promote = {"ops": {"promote_model": {"config": {
            "version": model_version(result), "actor": "tests", "reason": "tiny test model"}}}}
        assert run(defs, instance, "promote_model_job", promote).success


@pytest.mark.slow
def test_model_job_trains_registers_and_gates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory (no ./mlruns)
    defs = definitions(tmp_path)
    (tmp_path / "dagster").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "dagster"))
    assert run(defs, instance, "catalog_job").success
    config = {"ops": {"tag_model": {"config": TINY}}}
    first = run(defs, instance, "model_job", config)
    assert first.success
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert checks == {"product_features_expectations": True}
    trained = first.asset_materializations_for_node("tag_model")[0].metadata
    assert trained["model_version"].value == "1"
    evaluation = first.asset_materializations_for_node("tag_model_evaluation")[0].metadata
    for model in ("tagger", "baseline"):
        value = evaluation[f"test.{model}.all.all.micro_f1"].value
        assert 0.0 <= value <= 1.0
        assert f"test.{model}.images.type_category.micro_f1" in evaluation
    tagger = evaluation["test.tagger.all.all.micro_f1"].value
    baseline = evaluation["test.baseline.all.all.micro_f1"].value
    assert evaluation["baseline_micro_f1"].value == pytest.approx(baseline, abs=1e-4)
    client = MlflowResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}",
                            registered_model_name="tagger").client()
    v1 = client.get_model_version("tagger", "1").tags
    # the gate decides on unrounded scores (version tags); the metadata shows 4 decimals
    assert float(v1["gate.candidate_score"]) == pytest.approx(tagger, abs=1e-4)
    tagger, baseline = float(v1["gate.candidate_score"]), float(v1["gate.baseline_score"])
    # No champion yet: the in-run baseline alone is the bar. The one-epoch model usually
    # ties it (the fusion then keeps the linear backend alone) and a tie is not a win.
    assert evaluation["promoted"].value is (tagger > baseline)
    assert v1["gate.promoted"] == ("true" if tagger > baseline else "false")
    assert float(v1["gate.baseline_score"]) == pytest.approx(baseline, abs=1e-4)
    if tagger > baseline:
        assert evaluation["decision"].value.startswith("no champion yet; beats the baseline")
        assert client.get_model_version_by_alias("tagger", "champion").version in (1, "1")
    else:
        assert "does not beat the baseline" in evaluation["decision"].value
        assert "does not beat the baseline" in v1["gate.reason"]
        with pytest.raises(Exception, match="champion"):
            client.get_model_version_by_alias("tagger", "champion")
        # promote still overrules the gate, with a reason
        promote = {"ops": {"promote_model": {"config": {"version": "1", "actor": "alice",
                                                         "reason": "tiny test model"}}}}
        assert run(defs, instance, "promote_model_job", promote).success
        assert str(client.get_model_version_by_alias("tagger", "champion").version) == "1"
    assert "results" in evaluation and "baseline" in evaluation["results"].value
    mlflow_run = client.get_run(trained["mlflow_run_id"].value)
    assert mlflow_run.data.tags["dagster_run_id"] == first.run_id
    assert "test.tagger.all.all.micro_f1" in mlflow_run.data.metrics
    assert not (tmp_path / "mlruns").exists()

    # A second model is scored against the baseline and the champion on the same split.
    second = run(defs, instance, "model_job", config)
    evaluation2 = second.asset_materializations_for_node("tag_model_evaluation")[0].metadata
    v2 = client.get_model_version("tagger", "2").tags
    assert v2["gate.promoted"] in ("true", "false") and v2["gate.champion_version"] == "1"
    if float(v2["gate.candidate_score"]) <= float(v2["gate.baseline_score"]):
        assert "does not beat the baseline" in evaluation2["decision"].value
        assert v2["gate.promoted"] == "false"
    else:
        assert "champion v1" in evaluation2["decision"].value

    # An engineer overrules the gate, then rolls back.
    promote = {"ops": {"promote_model": {"config": {"version": "2", "actor": "alice",
                                                     "reason": "manual check"}}}}
    assert run(defs, instance, "promote_model_job", promote).success
    assert str(client.get_model_version_by_alias("tagger", "champion").version) == "2"
    assert run(defs, instance, "rollback_model_job").success
    assert str(client.get_model_version_by_alias("tagger", "champion").version) == "1"
