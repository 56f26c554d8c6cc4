"""build_features -> train_model -> evaluate_on_test on a tiny text-only catalog."""

import math

import polars as pl
import pytest

from tag_pipeline.lib.models.tagger import TaggerConfig
from tag_pipeline.lib.models.tracking import flat_metrics, plot_model_vs_baseline
from tag_pipeline.lib.models.training import build_features, evaluate_on_test, train_model
from tag_pipeline_tests.lib.models_data import labels_frame, products_frame

# these tests train taggers or refiners, or run whole jobs (make test-fast skips them)
pytestmark = pytest.mark.slow

TINY = TaggerConfig(embedding_dim=8, lstm_units=8, cnn_filters=(4, 4, 4), fused_dim=16,
                    image_size=16, seq_len=16, epochs=1, batch_size=8, vocab_size=300)


def test_text_only_catalog_trains_and_reports_no_image_subset(tmp_path):
    products = products_frame().with_columns(image_path=pl.lit(None, dtype=pl.String))
    # a salt that puts products in every split of this tiny catalog
    features = build_features(products, labels_frame(), min_support=2, salt="t")
    counts = features.counts()
    assert counts["products.train"] > 0 and counts["products.test"] > 0
    assert counts["with_image.test"] == 0
    trained = train_model(features, TINY)
    evaluation = evaluate_on_test(trained, features)
    assert set(evaluation.results["tagger"]) == {"all"}  # no made-up image-subset numbers
    assert evaluation.n_test_images == 0
    metrics = flat_metrics(evaluation)
    assert metrics and all(0.0 <= v <= 1.0 and not math.isnan(v) for v in metrics.values())
    assert "test.tagger.all.all.micro_f1" in metrics
    assert not any(".images." in k for k in metrics)
    assert plot_model_vs_baseline(evaluation, tmp_path / "plot.png").stat().st_size > 0
    # tagger - baseline with its paired bootstrap interval, for the metrics that add up
    assert set(evaluation.baseline_difference) == {"micro_f1", "accuracy"}
    for metric, difference in evaluation.baseline_difference.items():
        assert difference.difference == pytest.approx(
            evaluation.metric("tagger", "all", "all", metric)
            - evaluation.metric("baseline", "all", "all", metric), abs=1e-12)
        assert difference.low <= difference.difference <= difference.high
        assert difference.products == counts["products.test"]
    # and per head: accuracy of a single-valued facet, micro-F1 of a multi-valued one
    kinds = {h.name: h.kind for h in features.space.heads}
    assert {"softmax", "sigmoid"} <= set(kinds.values())
    assert set(evaluation.head_difference) == set(kinds)
    for head, difference in evaluation.head_difference.items():
        assert difference.metric == ("accuracy" if kinds[head] == "softmax" else "micro_f1")
        assert difference.difference == pytest.approx(
            evaluation.metric("tagger", "all", f"head:{head}", difference.metric)
            - evaluation.metric("baseline", "all", f"head:{head}", difference.metric),
            abs=1e-12)
        assert difference.low <= difference.difference <= difference.high
    table = evaluation.margin_table()
    assert table["scope"].to_list() == ["all", "all", *[f"head:{h}" for h in
                                                        evaluation.head_difference]]
    assert (table["low"] <= table["tagger - baseline"]).all()
