"""The tagger: trained and tracked in MLflow, then measured on the test split beside the
baseline and promoted through the registry gate."""

import tempfile
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.policies import OWNERS
from tag_pipeline.defs.resources import MlflowResource
from tag_pipeline.lib.models.labels import LabelSpace
from tag_pipeline.lib.models.training import FeatureSet
from tag_pipeline.lib.warehouse import markdown_table, read_table


class TagModelConfig(dg.Config):
    """Tagger hyper-parameters (see ``TaggerConfig``). The defaults keep the demo fast; for a
    real catalog such as myntra use epochs=20, patience=2, batch_size=128,
    learning_rate=0.003 (early stopping ends training, the learning rate drops after
    lr_patience epochs without progress), and seq_len=32 when products have titles only."""

    epochs: int = 8
    batch_size: int = 64
    embedding_dim: int = 64
    lstm_units: int = 64
    ngram_sizes: list[int] = [1, 2, 3]
    ngram_filters: int = 64
    seq_len: int = 48
    image_size: int = 64
    vocab_size: int = 8000
    learning_rate: float = 2e-3
    lr_patience: int = 1
    lr_factor: float = 0.3
    patience: int = 2
    seed: int = 42


class TagModelEvaluationConfig(dg.Config):
    """The promotion gate: the challenger must beat the champion on this test metric."""

    primary_metric: str = "micro_f1"
    min_improvement: float = 0.0


def load_feature_set(duckdb: DuckDBResource) -> FeatureSet:
    """The stored split, labels and label space (written by product_features)."""
    with duckdb.get_connection() as con:
        products = read_table(con, "product_features")
        labels = read_table(con, "product_labels", ["product_id", "tag", "tag_type", "facet"])
        space = LabelSpace.from_json(read_table(con, "label_space")["space_json"][0])
    return FeatureSet.from_stored(products, labels, space)


@dg.asset(group_name="model", owners=OWNERS, deps=["product_features"],
          kinds={"tensorflow", "keras", "mlflow"})
def tag_model(context: dg.AssetExecutionContext, config: TagModelConfig,
              duckdb: DuckDBResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """Train the CNN + BiLSTM tagger, log it to MLflow and register it as the challenger."""
    import mlflow as mlflow_lib

    from tag_pipeline.lib.models.bundle import TaggerBundle, save_bundle
    from tag_pipeline.lib.models.pyfunc import log_tagger
    from tag_pipeline.lib.models.tagger import TaggerConfig
    from tag_pipeline.lib.models.tracking import (
        ensure_experiment,
        epoch_table,
        plot_training_curve,
        png_markdown,
    )
    from tag_pipeline.lib.models.training import train_model
    from tag_pipeline.lib.registry import CHALLENGER, ensure_registered_model, move_alias

    features = load_feature_set(duckdb)
    tagger_config = TaggerConfig(**config.model_dump())
    client = mlflow.client()
    mlflow_lib.set_tracking_uri(mlflow.tracking_uri)
    mlflow_lib.set_registry_uri(mlflow.registry_uri or mlflow.tracking_uri)
    experiment_id = ensure_experiment(client, mlflow.experiment_name, mlflow.artifact_location)
    name = mlflow.registered_model_name
    with mlflow_lib.start_run(experiment_id=experiment_id,
                              tags={"dagster_run_id": context.run_id,
                                    "dagster_asset": "tag_model"}) as run:
        mlflow_lib.log_params({k: str(v) for k, v in tagger_config.to_dict().items()})
        mlflow_lib.log_params({**features.counts(), "heads": len(features.space.heads)})

        def on_epoch_end(epoch: int, logs: dict[str, float]) -> None:
            mlflow_lib.log_metrics({k: v for k, v in logs.items()}, step=epoch)
            context.log.info(
                f"epoch {epoch + 1}/{tagger_config.epochs}: loss {logs.get('loss', 0):.4f}, "
                f"val_loss {logs.get('val_loss', 0):.4f}, {logs['seconds']:.1f} s"
            )

        trained = train_model(features, tagger_config, on_epoch_end=on_epoch_end)
        with tempfile.TemporaryDirectory(prefix="tagger_") as tmp:
            bundle_dir = save_bundle(
                TaggerBundle(model=trained.model, space=trained.space, vocab=trained.vocab,
                             thresholds=trained.thresholds, config=tagger_config),
                Path(tmp) / "bundle")
            curve = plot_training_curve(trained.history, Path(tmp) / "training_curve.png")
            mlflow_lib.log_artifact(str(curve))
            curve_markdown = png_markdown(curve, "training curve")
            for part in ("vocab.txt", "label_space.json", "thresholds.json"):
                mlflow_lib.log_artifact(str(bundle_dir / part), artifact_path="tagger")
            example = features.split("val").head(3).select(
                "product_id", "title", "description", "image_path").to_pandas()
            info = log_tagger(bundle_dir, name="model", input_example=example)
        ensure_registered_model(client, name)
        version = str(mlflow_lib.register_model(info.model_uri, name).version)
        client.set_model_version_tag(name, version, "dagster_run_id", context.run_id)
        move_alias(client, name, CHALLENGER, version, actor=f"dagster run {context.run_id}",
                   reason="newly trained")
    url = mlflow.run_url(experiment_id, run.info.run_id)
    version_url = mlflow.model_version_url(name, version)
    best = min(trained.history.get("val_loss", [float("nan")]))
    return dg.MaterializeResult(metadata={
        "model_name": name,
        "model_version": version,
        "model_uri": f"models:/{name}/{version}",
        "mlflow_run_id": run.info.run_id,
        **({"mlflow_run_url": dg.MetadataValue.url(url)} if url else {}),
        **({"model_version_url": dg.MetadataValue.url(version_url)} if version_url else {}),
        "training_curve": dg.MetadataValue.md(curve_markdown),
        "epochs": dg.MetadataValue.md(epoch_table(trained.history, trained.epoch_seconds)),
        "epochs_run": len(trained.epoch_seconds),
        "seconds_per_epoch": round(sum(trained.epoch_seconds) / max(1, len(trained.epoch_seconds)),
                                   2),
        "best_val_loss": round(best, 4),
        "vocabulary_size": len(trained.vocab),
    })


def _registry_tagger(name: str, version: str):
    """Load a registered version's pyfunc and give back the trained tagger inside it."""
    import mlflow as mlflow_lib

    from tag_pipeline.lib.models.training import TrainedTagger

    python_model = mlflow_lib.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()
    bundle = python_model.bundle
    return TrainedTagger(model=bundle.model, space=bundle.space, vocab=bundle.vocab,
                         thresholds=bundle.thresholds, config=bundle.config, history={})


@dg.asset(group_name="model", owners=OWNERS, deps=["tag_model"],
          kinds={"mlflow", "scikitlearn"})
def tag_model_evaluation(context: dg.AssetExecutionContext, config: TagModelEvaluationConfig,
                         duckdb: DuckDBResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """Test-split metrics of the challenger and the baseline; promote it if it wins."""
    import mlflow as mlflow_lib

    from tag_pipeline.lib.models.tracking import (
        flat_metrics,
        metric_key,
        plot_model_vs_baseline,
        png_markdown,
    )
    from tag_pipeline.lib.models.training import evaluate_on_test, score_products
    from tag_pipeline.lib.registry import (
        CHALLENGER,
        CHAMPION,
        RegistryError,
        alias_version,
        decide_promotion,
        move_alias,
        record_decision,
    )

    mlflow_lib.set_tracking_uri(mlflow.tracking_uri)
    mlflow_lib.set_registry_uri(mlflow.registry_uri or mlflow.tracking_uri)
    client = mlflow.client()
    name = mlflow.registered_model_name
    challenger = alias_version(client, name, CHALLENGER)
    if challenger is None:
        raise RegistryError(f"registered model {name!r} has no {CHALLENGER!r} alias: "
                            "materialize tag_model first")
    features = load_feature_set(duckdb)
    trained = _registry_tagger(name, challenger)
    evaluation = evaluate_on_test(trained, features)
    metric = config.primary_metric
    score = evaluation.metric("tagger", "all", "all", metric)
    champion = alias_version(client, name, CHAMPION)
    champion_score = None
    if champion is not None and champion != challenger:
        champion_tagger = _registry_tagger(name, champion)
        champion_eval = evaluate_on_test(
            champion_tagger, features,
            tagger_scores=score_products(champion_tagger, features.split("test")))
        champion_score = champion_eval.metric("tagger", "all", "all", metric)
    client.set_model_version_tag(name, challenger, f"test.{metric}", f"{score:.6f}")
    if champion == challenger:
        promoted, decision_reason = False, "challenger is already the champion"
    else:
        decision = decide_promotion(client, name, challenger, score, metric,
                                    champion_score=champion_score,
                                    min_improvement=config.min_improvement)
        record_decision(client, name, decision)
        promoted, decision_reason = decision.promote, decision.reason
        if decision.promote:
            move_alias(client, name, CHAMPION, challenger, actor="promotion gate",
                       reason=decision.reason)
    context.log.info(f"promotion of v{challenger}: {promoted} ({decision_reason})")

    metrics = flat_metrics(evaluation)
    run_id = client.get_model_version(name, challenger).run_id
    table = evaluation.table()
    with tempfile.TemporaryDirectory(prefix="evaluation_") as tmp:
        table_path = Path(tmp) / "test_metrics.csv"
        table.write_csv(table_path)
        plot = plot_model_vs_baseline(evaluation, Path(tmp) / "model_vs_baseline.png")
        plot_markdown = png_markdown(plot, "tagger vs baseline")
        with mlflow_lib.start_run(run_id=run_id):
            mlflow_lib.log_metrics(metrics)
            mlflow_lib.log_artifact(str(table_path))
            mlflow_lib.log_artifact(str(plot))
    summary = table.filter(~pl.col("scope").str.starts_with("head:")).select(
        "model", "subset", "scope", "micro_f1", "macro_f1", "samples_f1", "p_at_1", "p_at_5",
        "ndcg_at_5").with_columns(pl.col(pl.Float64).round(4))
    version_url = mlflow.model_version_url(name, challenger)
    return dg.MaterializeResult(metadata={
        "model_version": challenger,
        **({"model_version_url": dg.MetadataValue.url(version_url)} if version_url else {}),
        "champion_version": alias_version(client, name, CHAMPION) or "",
        "promoted": promoted,
        "decision": decision_reason,
        f"challenger_{metric}": round(score, 4),
        **({f"champion_{metric}": round(champion_score, 4)} if champion_score is not None
           else {}),
        "test_products": evaluation.n_test,
        "test_products_with_image": evaluation.n_test_images,
        "baseline_seconds": round(evaluation.baseline_seconds, 1),
        **{metric_key(k): round(v, 4) for k, v in metrics.items()},
        "results": dg.MetadataValue.md(markdown_table(summary, max_chars=20)),
        "model_vs_baseline": dg.MetadataValue.md(plot_markdown),
    })
