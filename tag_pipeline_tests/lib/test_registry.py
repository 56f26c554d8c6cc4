"""The registry gate, promotion and rollback against a real sqlite-backed MLflow registry."""

import json

import pytest
from mlflow import MlflowClient

from tag_pipeline.lib.registry import (
    CHAMPION,
    RegistryError,
    alias_version,
    decide_promotion,
    ensure_registered_model,
    move_alias,
    record_decision,
    rollback,
)

NAME = "tagger"


@pytest.fixture
def client(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    ensure_registered_model(client, NAME)
    experiment = client.create_experiment("t", artifact_location=str(tmp_path / "artifacts"))
    versions = []
    for score in (0.50, 0.40, 0.60):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "micro_f1", score)
        client.set_terminated(run.info.run_id)
        mv = client.create_model_version(NAME, source=str(tmp_path / "m"), run_id=run.info.run_id,
                                         tags={"test.micro_f1": str(score)})
        versions.append(str(mv.version))
    assert versions == ["1", "2", "3"]
    return client


def test_first_model_is_promoted_without_champion(client):
    decision = decide_promotion(client, NAME, "1", 0.50, "micro_f1")
    assert decision.promote and decision.reason == "no champion yet"


def test_worse_challenger_is_not_promoted_and_better_one_is(client):
    move_alias(client, NAME, CHAMPION, "1", actor="gate", reason="first")
    worse = decide_promotion(client, NAME, "2", 0.40, "micro_f1")
    assert not worse.promote and worse.champion_version == "1"
    assert worse.champion_score == pytest.approx(0.50)
    record_decision(client, NAME, worse)
    tags = client.get_model_version(NAME, "2").tags
    assert tags["gate.promoted"] == "false" and tags["gate.champion_score"] == "0.500000"
    better = decide_promotion(client, NAME, "3", 0.60, "micro_f1")
    assert better.promote and "beats champion v1" in better.reason
    # the same champion scored on the same split by the caller takes precedence
    measured = decide_promotion(client, NAME, "3", 0.60, "micro_f1", champion_score=0.65)
    assert not measured.promote


def test_alias_moves_are_recorded_and_rollback_restores(client):
    move_alias(client, NAME, CHAMPION, "1", actor="gate", reason="first")
    previous = move_alias(client, NAME, CHAMPION, "3", actor="alice", reason="better on test")
    assert previous == "1" and alias_version(client, NAME, CHAMPION) == "3"
    tags = client.get_model_version(NAME, "3").tags
    assert tags["champion.set_by"] == "alice" and tags["champion.previous_version"] == "1"
    history = json.loads(tags["alias_history"])
    assert history[-1]["reason"] == "better on test" and history[-1]["previous"] == "1"
    move_alias(client, NAME, CHAMPION, "3", actor="carol", reason="again")  # no-op move
    assert rollback(client, NAME, actor="bob", reason="bad tags") == ("3", "1")
    assert alias_version(client, NAME, CHAMPION) == "1"
    assert "rollback from v3" in client.get_model_version(NAME, "1").tags["champion.reason"]


def test_errors_name_model_and_version(client):
    with pytest.raises(RegistryError, match="no champion to roll back"):
        rollback(client, NAME, actor="x", reason="y")
    with pytest.raises(RegistryError, match="'tagger' has no version '9'"):
        move_alias(client, NAME, CHAMPION, "9", actor="x", reason="y")
    move_alias(client, NAME, CHAMPION, "2", actor="x", reason="first")
    with pytest.raises(RegistryError, match="replaced no earlier version"):
        rollback(client, NAME, actor="x", reason="y")


def test_a_loser_to_the_baseline_is_refused_even_without_a_champion(client):
    assert alias_version(client, NAME, CHAMPION) is None
    decision = decide_promotion(client, NAME, "1", 0.50, "micro_f1", baseline_score=0.55)
    assert not decision.promote
    assert "does not beat the baseline 0.5500" in decision.reason
    record_decision(client, NAME, decision)
    tags = client.get_model_version(NAME, "1").tags
    assert tags["gate.promoted"] == "false"
    assert tags["gate.baseline_score"] == "0.550000"
    # a tie is no win either
    assert not decide_promotion(client, NAME, "1", 0.55, "micro_f1",
                                baseline_score=0.55).promote


def test_the_reason_and_the_version_quote_the_margin_over_the_baseline(client):
    from tag_pipeline.lib.models.comparison import Difference

    margin = Difference("micro_f1", -0.0001, -0.0021, 0.0019, 0.95, 1000, 2072)
    refused = decide_promotion(client, NAME, "1", 0.9551, "micro_f1", baseline_score=0.9552,
                               baseline_difference=margin)
    assert not refused.promote  # the interval informs; it does not decide
    assert refused.reason == (
        "micro_f1 0.9551 does not beat the baseline 0.9552 (TF-IDF + LinearSVC, same split; "
        "difference -0.0001, 95% interval -0.0021 to +0.0019 (1,000 resamples of the 2,072 "
        "test products))")
    record_decision(client, NAME, refused)
    tags = client.get_model_version(NAME, "1").tags
    assert tags["gate.baseline_difference"] == "-0.000100"
    assert tags["gate.baseline_interval"] == "-0.002100 to +0.001900"
    assert tags["gate.baseline_interval_method"] == (
        "paired bootstrap of micro_f1, 95%, 1000 resamples of the 2072 test products")
    won = decide_promotion(client, NAME, "3", 0.60, "micro_f1", baseline_score=0.55,
                           baseline_difference=Difference("micro_f1", 0.05, 0.03, 0.07, 0.95,
                                                          1000, 500))
    assert won.promote and won.reason == (
        "no champion yet; beats the baseline 0.5500 (difference +0.0500, 95% interval +0.0300 "
        "to +0.0700 (1,000 resamples of the 500 test products))")


def test_a_winner_over_the_baseline_is_promoted_without_a_champion(client):
    decision = decide_promotion(client, NAME, "3", 0.60, "micro_f1", baseline_score=0.55)
    assert decision.promote
    assert decision.reason == "no champion yet; beats the baseline 0.5500"
    # with a champion, the baseline is the first bar and the champion the second
    move_alias(client, NAME, CHAMPION, "3", actor="t", reason="t")
    beaten = decide_promotion(client, NAME, "1", 0.58, "micro_f1", champion_score=0.60,
                              baseline_score=0.55)
    assert not beaten.promote and "does not beat champion v3" in beaten.reason
