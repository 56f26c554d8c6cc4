"""The refiner and the tag tables for real: Dagster runs on the demo catalog with a sqlite
MLflow in tmp_path; retagging is idempotent, history grows only by changes, restore works."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import polars as pl
import pytest

from tag_pipeline_tests.integration.test_model_job import definitions, run, train_champion

TINY_REFINER = {"epochs": 1, "batch_size": 64, "noise_dim": 4, "hidden_dim": 16,
                "noise_samples": 2}


def _table(tmp_path, name: str) -> pl.DataFrame:
    with duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(f"SELECT * FROM {name}").pl()


@pytest.mark.slow
def test_tags_job_tags_every_product_and_retags_idempotently(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    defs = definitions(tmp_path)
    (tmp_path / "dagster").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "dagster"))
    assert run(defs, instance, "catalog_job").success
    train_champion(defs, instance)

    first = run(defs, instance, "tags_job",
                {"ops": {"tag_refiner": {"config": TINY_REFINER}}})
    assert first.success
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert checks == {"tag_refiner_ablation_expectations": True,
                      "product_tags_expectations": True,
                      "model_tags_expectations": True,
                      "product_tag_history_expectations": True,
                      "product_tags_consistent": True,
                      "product_tags_cover_catalog": True,
                      "product_tags_versions_registered": True}
    refiner = first.asset_materializations_for_node("tag_refiner")[0].metadata
    assert refiner["tagger_version"].value == "1"
    for arm in ("tagger", "tagger_refiner"):
        assert 0.0 <= refiner[f"{arm}.micro_f1"].value <= 1.0
    tags_meta = {m.asset_key.to_user_string(): m.metadata
                 for m in first.asset_materializations_for_node("product_tags")}
    applied = tags_meta["product_tags"]["refiner_applied"].value
    assert applied == refiner["ablation_passed"].value

    tags = _table(tmp_path, "product_tags")
    cleaned = _table(tmp_path, "cleaned_products")
    untagged = _table(tmp_path, "untagged_products")
    assert set(tags["product_id"]) | set(untagged["product_id"]) == set(cleaned["product_id"])
    assert tags.filter(pl.col("source") == "model")["tagger_version"].unique().to_list() == ["1"]
    assert tags["score"].is_between(0, 1).all()
    assert tags.filter(pl.col("source").is_in(["model", "refiner"]))[
        "explanation"].is_not_null().any()
    history = _table(tmp_path, "product_tag_history")
    assert history.height == tags.height and set(history["change"]) == {"added"}

    # The same champion retags: nothing changes, the history does not grow.
    again = run(defs, instance, "retag_job")
    assert again.success
    assert _table(tmp_path, "product_tags").sort("product_id", "tag_type", "tag").equals(
        tags.sort("product_id", "tag_type", "tag"))
    assert _table(tmp_path, "product_tag_history").height == history.height
    meta = {m.asset_key.to_user_string(): m.metadata
            for m in again.asset_materializations_for_node("product_tags")}
    assert meta["product_tag_history"]["rows_appended"].value == 0
    # Nothing changed and the champion is the same: no product is scored again.
    assert meta["model_tags"]["products_scored"].value == 0
    assert tags_meta["model_tags"]["products_scored"].value == cleaned.height
    exported = pl.read_parquet(tmp_path / "exports" / "product_tags" / "**" / "*.parquet",
                               hive_partitioning=True)
    assert exported.height == tags.height
    assert set(exported["tag_type"]) == set(tags["tag_type"])

    # Tagging without catalog tags changes the table; restoring the first run brings it back.
    changed = run(defs, instance, "retag_job",
                  {"ops": {"product_tags": {"config": {"include_catalog_tags": False}}}})
    assert changed.success
    assert not _table(tmp_path, "product_tags").filter(pl.col("source") == "catalog").height
    restore = {"ops": {"restore_product_tags": {"config": {"to_run_id": first.run_id}}}}
    assert run(defs, instance, "restore_tags_job", restore).success
    restored = _table(tmp_path, "product_tags")
    columns = ["product_id", "tag", "tag_type", "score", "source"]
    assert restored.select(columns).sort(columns).equals(tags.select(columns).sort(columns))

    # Feedback: a shopper rejects a model tag and adds one; feedback_job applies it at once.
    monkeypatch.setenv("TAG_PIPELINE_TEST_PSEUDONYM_KEY", "test-key-" + "k" * 24)
    target = restored.filter(pl.col("source") == "model").sort("product_id").row(0, named=True)
    pid, key = target["product_id"], (target["tag_type"], target["tag"])
    feedback = tmp_path / "landing" / "feedback"
    feedback.mkdir(parents=True)
    (feedback / "f1.csv").write_text(
        "product_id,tag,tag_type,action,user_id,timestamp,note\n"
        f"{pid},{key[1]},{key[0]},reject,alice@example.com,2026-11-28T10:00:00,wrong\n"
        f"{pid},handmade,style,add,bob,2026-11-28T10:05:00,\n", encoding="utf-8")
    applied_feedback = run(defs, instance, "feedback_job")
    assert applied_feedback.success

    def product(name: str = "product_tags") -> pl.DataFrame:
        return _table(tmp_path, name).filter(pl.col("product_id") == pid)

    assert key not in set(product().select("tag_type", "tag").iter_rows())
    assert product().filter(pl.col("tag") == "handmade")["source"].to_list() == ["feedback"]
    users = _table(tmp_path, "raw_feedback")["user_key"].to_list()
    assert all(u.startswith("u_") and len(u) == 34 for u in users)
    assert not {"alice@example.com", "bob"} & set(users)
    events = product("product_tag_history").filter(pl.col("run_id") == applied_feedback.run_id)
    assert {(r["change"], r["tag"]) for r in events.iter_rows(named=True)} == {
        ("removed", key[1]), ("added", "handmade")}

    # A full retag scores every product again and the rejection stays.
    full = {"ops": {"product_tags": {"config": {"full_retag": True}}}}
    assert run(defs, instance, "retag_job", full).success
    assert key not in set(product().select("tag_type", "tag").iter_rows())

    # Sales: one product sells far more than the others in the last days: bestseller.
    sales = tmp_path / "landing" / "sales"
    sales.mkdir(parents=True)
    when = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
    others = cleaned.filter(pl.col("product_id") != pid)["product_id"].head(5).to_list()
    lines = [f"o1,{pid},60,9.5,{when},carol"] + [
        f"o{i + 2},{other},1,9.5,{when}," for i, other in enumerate(others)]
    (sales / "s1.csv").write_text("order_id,product_id,quantity,price,timestamp,user_id\n"
                                  + "\n".join(lines) + "\n", encoding="utf-8")
    assert run(defs, instance, "sales_job").success
    sold = product().filter(pl.col("source") == "sales")
    assert "bestseller" in sold["tag"].to_list()
