"""The refiner and the tag tables for real: Dagster runs on the demo catalog with the project
home's sqlite MLflow; retagging is idempotent, history grows only by changes, restore works.

The first tags_job is the one that prepared the session's trained home (read back from the
copy's own event log); the runs after it go on this test's copy."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import polars as pl
import pytest

from tag_pipeline.definitions import build_definitions
from tag_pipeline.defs.resources import build_resources
from tag_pipeline_tests.support import environment, home_env, run, run_events


def _table(home, name: str) -> pl.DataFrame:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(f"SELECT * FROM {name}").pl()


def _contradictions(home, min_score: float = 0.0) -> pl.DataFrame:
    """Served catalog values the model's tag in the same single-valued facet contradicts,
    computed here from product_tags, model_tags and the label space."""
    from tag_pipeline.lib.models.labels import SOFTMAX, LabelSpace

    space = LabelSpace.from_json(_table(home, "label_space")["space_json"][0])
    single = pl.DataFrame([{"tag_type": h.tag_type, "facet": f} for h in space.heads
                           if h.kind == SOFTMAX for f in h.facets])
    served = _table(home, "product_tags").filter(pl.col("source") == "catalog").select(
        "product_id", "tag_type", "facet", catalog_tag="tag")
    model = _table(home, "model_tags").join(single, on=["tag_type", "facet"]).filter(
        pl.col("score") >= min_score).select("product_id", "tag_type", "facet",
                                             "score", model_tag="tag")
    return served.join(model, on=["product_id", "tag_type", "facet"]).filter(
        pl.col("catalog_tag") != pl.col("model_tag"))


@pytest.mark.slow
def test_tags_job_tags_every_product_and_retags_idempotently(trained_home_copy, tmp_path,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    home = trained_home_copy.home
    with environment(home_env(home)), dg.DagsterInstance.get() as instance:
        _tags_job_then_retags_feedback_and_sales(
            home, build_definitions(build_resources()), instance,
            trained_home_copy.runs["tags_job"])


def _tags_job_then_retags_feedback_and_sales(home, defs, instance, first_run):
    tags_meta, checks = run_events(instance, first_run)
    assert checks == {"tag_refiner_ablation_expectations": True,
                      "product_tags_expectations": True,
                      "model_tags_expectations": True,
                      "product_tag_history_expectations": True,
                      "product_tags_consistent": True,
                      "product_tags_cover_catalog": True,
                      "product_tags_versions_registered": True,
                      "catalog_tag_disagreements_expectations": True}
    refiner = tags_meta["tag_refiner"]
    assert refiner["tagger_version"].value == "1"
    for arm in ("tagger", "tagger_refiner"):
        assert 0.0 <= refiner[f"{arm}.micro_f1"].value <= 1.0
    applied = tags_meta["product_tags"]["refiner_applied"].value
    assert applied == refiner["ablation_passed"].value
    # a refiner that changes something: the reason gives the delta's bootstrap interval
    decision = refiner["ablation_decision"].value
    assert "nothing to apply" in decision or "the delta's 95% interval" in decision, decision

    tags = _table(home, "product_tags")
    cleaned = _table(home, "cleaned_products")
    untagged = _table(home, "untagged_products")
    assert set(tags["product_id"]) | set(untagged["product_id"]) == set(cleaned["product_id"])
    assert tags.filter(pl.col("source") == "model")["tagger_version"].unique().to_list() == ["1"]
    assert tags["score"].is_between(0, 1).all()
    assert tags.filter(pl.col("source").is_in(["model", "refiner"]))[
        "explanation"].is_not_null().any()
    history = _table(home, "product_tag_history")
    assert history.height == tags.height and set(history["change"]) == {"added"}
    # The review queue of the first run: the contradictions at the default score floor.
    keys = ["product_id", "tag_type", "facet", "catalog_tag", "model_tag"]
    assert _table(home, "catalog_tag_disagreements").select(keys).sort(keys).equals(
        _contradictions(home, 0.9).select(keys).sort(keys))
    assert tags_meta["catalog_tag_disagreements"]["min_model_score"].value == 0.9

    # The same champion retags: nothing changes, the history does not grow.
    again = run(defs, instance, "retag_job")
    assert again.success
    assert _table(home, "product_tags").sort("product_id", "tag_type", "tag").equals(
        tags.sort("product_id", "tag_type", "tag"))
    assert _table(home, "product_tag_history").height == history.height
    meta = {m.asset_key.to_user_string(): m.metadata
            for m in again.asset_materializations_for_node("product_tags")}
    assert meta["product_tag_history"]["rows_appended"].value == 0
    # Nothing changed and the champion is the same: no product is scored again.
    assert meta["model_tags"]["products_scored"].value == 0
    assert tags_meta["model_tags"]["products_scored"].value == cleaned.height
    exported = pl.read_parquet(home / "exports" / "product_tags" / "**" / "*.parquet",
                               hive_partitioning=True)
    assert exported.height == tags.height
    assert set(exported["tag_type"]) == set(tags["tag_type"])

    # Tagging without catalog tags changes the table; restoring the first run brings it back.
    changed = run(defs, instance, "retag_job",
                  {"ops": {"product_tags": {"config": {"include_catalog_tags": False}}}})
    assert changed.success
    assert not _table(home, "product_tags").filter(pl.col("source") == "catalog").height
    restore = {"ops": {"restore_product_tags": {"config": {"to_run_id": first_run}}}}
    assert run(defs, instance, "restore_tags_job", restore).success
    restored = _table(home, "product_tags")
    columns = ["product_id", "tag", "tag_type", "score", "source"]
    assert restored.select(columns).sort(columns).equals(tags.select(columns).sort(columns))

    # Feedback: a shopper rejects a model tag and adds one; a reviewer rejects a catalog value
    # the model contradicts; feedback_job applies it at once.
    target = restored.filter(pl.col("source") == "model").sort("product_id").row(0, named=True)
    pid, key = target["product_id"], (target["tag_type"], target["tag"])
    contradicted = _contradictions(home).filter(pl.col("product_id") != pid).sort(
        "product_id", "facet").row(0, named=True)
    pid2 = contradicted["product_id"]
    feedback = home / "landing" / "feedback"
    feedback.mkdir(parents=True, exist_ok=True)
    (feedback / "f1.csv").write_text(
        "product_id,tag,tag_type,action,user_id,timestamp,note\n"
        f"{pid},{key[1]},{key[0]},reject,alice@example.com,2026-11-28T10:00:00,wrong\n"
        f"{pid},handmade,style,add,bob,2026-11-28T10:05:00,\n"
        f"{pid2},{contradicted['catalog_tag']},{contradicted['tag_type']},reject,dana,"
        "2026-11-28T10:06:00,catalog error\n", encoding="utf-8")
    every_contradiction = {"ops": {"catalog_tag_disagreements": {
        "config": {"min_model_score": 0.0}}}}
    applied_feedback = run(defs, instance, "feedback_job", every_contradiction)
    assert applied_feedback.success
    # The review queue is every contradiction but those feedback settled; the rejected catalog
    # value gave its facet to the model.
    reviewed = {(pid, *key), (pid, "style", "handmade"),
                (pid2, contradicted["tag_type"], contradicted["catalog_tag"])}
    settled = pl.DataFrame(sorted(reviewed), schema=["product_id", "tag_type", "tag"],
                           orient="row")
    expected = (_contradictions(home)
                .join(settled.rename({"tag": "catalog_tag"}),
                      on=["product_id", "tag_type", "catalog_tag"], how="anti")
                .join(settled.rename({"tag": "model_tag"}),
                      on=["product_id", "tag_type", "model_tag"], how="anti"))
    queue = _table(home, "catalog_tag_disagreements")
    keys = ["product_id", "tag_type", "facet", "catalog_tag", "model_tag"]
    assert queue.height and queue.select(keys).sort(keys).equals(expected.select(keys).sort(keys))
    assert queue["model_score"].to_list() == sorted(queue["model_score"], reverse=True)
    served = _table(home, "product_tags").filter(
        (pl.col("product_id") == pid2) & (pl.col("facet") == contradicted["facet"]))
    assert served.select("tag", "source").rows() == [(contradicted["model_tag"], "model")]

    def product(name: str = "product_tags") -> pl.DataFrame:
        return _table(home, name).filter(pl.col("product_id") == pid)

    assert key not in set(product().select("tag_type", "tag").iter_rows())
    assert product().filter(pl.col("tag") == "handmade")["source"].to_list() == ["feedback"]
    users = _table(home, "raw_feedback")["user_key"].to_list()
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
    sales = home / "landing" / "sales"
    sales.mkdir(parents=True, exist_ok=True)
    when = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
    others = cleaned.filter(pl.col("product_id") != pid)["product_id"].head(5).to_list()
    lines = [f"o1,{pid},60,9.5,{when},carol"] + [
        f"o{i + 2},{other},1,9.5,{when}," for i, other in enumerate(others)]
    (sales / "s1.csv").write_text("order_id,product_id,quantity,price,timestamp,user_id\n"
                                  + "\n".join(lines) + "\n", encoding="utf-8")
    assert run(defs, instance, "sales_job").success
    sold = product().filter(pl.col("source") == "sales")
    assert "bestseller" in sold["tag"].to_list()
