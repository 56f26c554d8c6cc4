"""The tagger: trained and tracked in MLflow, then measured on the test split beside the
baseline and promoted through the registry gate."""

import json
import tempfile
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.policies import WAREHOUSE_POOL
from tag_pipeline.defs.resources import CatalogResource, MlflowResource
from tag_pipeline.defs.retries import retry_only_transient
from tag_pipeline.lib.models.fusion import EMBEDDING, PHOTO
from tag_pipeline.lib.models.labels import LabelSpace
from tag_pipeline.lib.models.training import FeatureSet
from tag_pipeline.lib.warehouse import markdown_table, read_table


class TagModelConfig(dg.Config):
    """Tagger hyper-parameters (see ``TaggerConfig``, which holds the defaults). A setting
    left unset (null) comes from the catalog profile's ``training:`` section, else from
    ``TaggerConfig``; a setting given here overrides both. The shipped profiles carry the
    settings that measured best for their catalog."""

    epochs: int | None = None
    batch_size: int | None = None
    embedding_dim: int | None = None
    lstm_units: int | None = None
    ngram_sizes: list[int] | None = None
    ngram_filters: int | None = None
    seq_len: int | None = None
    image_size: int | None = None
    vocab_size: int | None = None
    learning_rate: float | None = None
    lr_patience: int | None = None
    lr_factor: float | None = None
    patience: int | None = None
    seed: int | None = None
    fuse_linear: bool | None = None
    linear_c: float | None = None
    linear_crosses: bool | None = None
    linear_nb: bool | None = None
    fusion_macro_weight: float | None = None
    text_embeddings: str | None = None
    photo_colour: bool | None = None


class TagModelEvaluationConfig(dg.Config):
    """The promotion gate: the challenger must beat the in-run baseline and the champion on
    this test metric."""

    primary_metric: str = "micro_f1"
    min_improvement: float = 0.0


def tagger_settings(profile_training: dict, config: TagModelConfig) -> dict:
    """The hyper-parameters of a training run: the profile's, overridden by the run config."""
    given = {k: v for k, v in config.model_dump().items() if v is not None}
    return {**profile_training, **given}


def load_feature_set(duckdb: DuckDBResource) -> FeatureSet:
    """The stored split, labels, label space and feature columns (from product_features)."""
    from tag_pipeline.lib.models.catalog_features import columns_from_json

    with duckdb.get_connection() as con:
        products = read_table(con, "product_features")
        labels = read_table(con, "product_labels",
                            ["product_id", "tag", "tag_type", "facet", "level", "parent"])
        stored = read_table(con, "label_space")
    space = LabelSpace.from_json(stored["space_json"][0])
    feature_columns = (columns_from_json(json.loads(stored["features_json"][0]))
                       if "features_json" in stored.columns else ())
    return FeatureSet.from_stored(products, labels, space, feature_columns)


@dg.asset(group_name="model", deps=["product_features"],
          kinds={"tensorflow", "keras", "mlflow"}, pool=WAREHOUSE_POOL)
@retry_only_transient
def tag_model(context: dg.AssetExecutionContext, config: TagModelConfig,
              duckdb: DuckDBResource, mlflow: MlflowResource,
              catalog: CatalogResource) -> dg.MaterializeResult:
    """Train the fused tagger (CNN + BiLSTM and linear n-gram backends), log it to MLflow and
    register it as the challenger."""
    import mlflow as mlflow_lib

    from tag_pipeline.lib.models.bundle import save_bundle
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
    settings = tagger_settings(catalog.load_profile().training, config)
    try:
        tagger_config = TaggerConfig(**settings)
    except TypeError as exc:
        raise ValueError(f"catalog profile {catalog.profile!r}: key 'training' or the run "
                         f"config of tag_model has a setting TaggerConfig does not know: "
                         f"{exc}") from exc
    context.log.info(f"tagger settings: {tagger_config.to_dict()}")
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
        if trained.linear is not None:
            crossed = sorted(trained.linear.cross_classifiers)
            mlflow_lib.log_param("linear_crossed_heads", ", ".join(crossed) or "none")
            nb_heads = sorted(trained.linear.nb_classifiers)
            mlflow_lib.log_param("linear_nb_heads", ", ".join(nb_heads) or "none")
            context.log.info("linear backend: feature crosses kept for "
                             f"{', '.join(crossed) or 'no head'}, NB-SVMs for "
                             f"{', '.join(nb_heads) or 'no head'} (validation)")
        if trained.embedding is not None:
            mixed = sorted(n for n, h in trained.fusion.heads.items() if h.embedding_weight)
            mlflow_lib.log_param("embedding_heads", ", ".join(mixed) or "none")
            stats = trained.embedding_stats
            context.log.info(f"embedding backend ({trained.embedding.encoder}, "
                             f"{trained.embedding_seconds:.0f} s; {stats.encoded} texts "
                             f"encoded, {stats.cached} read from the cache): mixed into "
                             f"{', '.join(mixed) or 'no head'} (validation)")
        if trained.photo is not None and trained.fusion is not None:
            mixed = trained.fusion.photo_heads
            mlflow_lib.log_param("photo_colour_heads", ", ".join(mixed) or "none")
            context.log.info(f"photo-colour backend ({trained.photo.n_train} training photos, "
                             f"{trained.photo_seconds:.0f} s): mixed into "
                             f"{', '.join(mixed) or 'no head'} (validation)")
        with tempfile.TemporaryDirectory(prefix="tagger_") as tmp:
            bundle_dir = save_bundle(trained.bundle(), Path(tmp) / "bundle")
            curve = plot_training_curve(trained.history, Path(tmp) / "training_curve.png")
            mlflow_lib.log_artifact(str(curve))
            curve_markdown = png_markdown(curve, "training curve")
            for part in ("vocab.txt", "label_space.json", "thresholds.json"):
                mlflow_lib.log_artifact(str(bundle_dir / part), artifact_path="tagger")
            example = features.split("val").head(3).select(
                "product_id", "title", "description", "image_path").to_pandas()
            for column in trained.feature_columns:
                # the raw feature values the served model reads, as an export has them
                example[column.name] = None
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
        "linear_backend_seconds": round(trained.linear_seconds, 1),
        **({"embedding_backend_seconds": round(trained.embedding_seconds, 1),
            "embedding_texts_encoded": trained.embedding_stats.encoded,
            "embedding_texts_cached": trained.embedding_stats.cached}
           if trained.embedding is not None else {}),
        **({"photo_colour_backend_seconds": round(trained.photo_seconds, 1),
            "photo_colour_heads": ", ".join(trained.fusion.photo_heads) or "none"}
           if trained.photo is not None and trained.fusion is not None else {}),
        "feature_columns": ", ".join(c.name for c in trained.feature_columns) or "none",
        **({"fusion": dg.MetadataValue.md(fusion_table(trained.fusion, trained.linear))}
           if trained.fusion is not None else {}),
    })


def fusion_table(fusion, linear=None) -> str:
    """Per head: the CNN + BiLSTM's weight, the prior adjustment, the validation objectives
    of the fused head and of each backend alone, and whether the linear backend reads the
    feature crosses (with its validation objective without and with them), as Markdown."""
    selection = linear.cross_selection if linear is not None else {}
    rows = [{"head": name, "cnn_bilstm weight": h.weight, "prior power": h.prior_power,
             **({"embedding weight": h.embedding_weight} if EMBEDDING in h.backend_objectives
                else {}),
             **({"photo weight": h.photo_weight} if PHOTO in h.backend_objectives else {}),
             "val objective fused": round(h.objective, 4),
             **{f"val objective {b}": round(v, 4) for b, v in h.backend_objectives.items()},
             "linear crosses": ("yes" if name in linear.cross_classifiers else "no")
             if name in selection else "n/a",
             "val linear plain / crossed": " / ".join(f"{v:.4f}" for v in selection[name])
             if name in selection else "",
             **({"linear nb-svm": "yes" if name in linear.nb_classifiers else "no",
                 "val linear before / nb-svm": " / ".join(
                     f"{v:.4f}" for v in linear.nb_selection[name])}
                if linear is not None and name in linear.nb_selection else {})}
            for name, h in fusion.heads.items()]
    return markdown_table(pl.DataFrame(rows))


def _registry_tagger(name: str, version: str):
    """Load a registered version's pyfunc and give back the trained tagger inside it."""
    import mlflow as mlflow_lib

    from tag_pipeline.lib.models.training import TrainedTagger

    python_model = mlflow_lib.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()
    return TrainedTagger.from_bundle(python_model.bundle)


@dg.asset(group_name="model", deps=["tag_model"],
          kinds={"mlflow", "scikitlearn"}, pool=WAREHOUSE_POOL)
@retry_only_transient
def tag_model_evaluation(context: dg.AssetExecutionContext, config: TagModelEvaluationConfig,
                         duckdb: DuckDBResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """Test-split metrics of the challenger, its backends and the baseline; promote it if it
    beats the baseline and the champion."""
    import mlflow as mlflow_lib

    from tag_pipeline.lib.models.comparison import LEVEL, RESAMPLES
    from tag_pipeline.lib.models.tracking import (
        flat_metrics,
        metric_key,
        plot_model_vs_baseline,
        png_markdown,
    )
    from tag_pipeline.lib.models.training import BASELINE, TAGGER, evaluate_on_test
    from tag_pipeline.lib.registry import (
        CHALLENGER,
        CHAMPION,
        RegistryError,
        alias_version,
        decide_promotion,
        log_test_metrics,
        logged_model_metrics,
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
    # the test metrics go on the version's LoggedModel (with the split as their data set)
    # first; the gate reads its two scores back from there
    metrics = flat_metrics(evaluation)
    model_id = log_test_metrics(client, name, challenger, metrics,
                                features.split("test")["product_id"].to_list(),
                                warehouse=duckdb.database)
    stored = logged_model_metrics(client, model_id) if model_id is not None else metrics
    score_key = metric_key("test", TAGGER, "all", "all", metric)
    baseline_key = metric_key("test", BASELINE, "all", "all", metric)
    score, baseline_score = stored.get(score_key), stored.get(baseline_key)
    if score is None or baseline_score is None:
        raise ValueError(f"tag_model_evaluation: primary_metric {metric!r} is not among the "
                         f"test metrics (e.g. {score_key!r}); set it to one that is")
    # tagger - baseline with its paired bootstrap interval (micro_f1 and accuracy only: the
    # metrics that add up over products)
    difference = evaluation.baseline_difference.get(metric)
    champion = alias_version(client, name, CHAMPION)
    champion_score = None
    if champion is not None and champion != challenger:
        champion_eval = evaluate_on_test(_registry_tagger(name, champion), features)
        champion_score = champion_eval.metric(TAGGER, "all", "all", metric)
    client.set_model_version_tag(name, challenger, f"test.{metric}", f"{score:.6f}")
    client.set_model_version_tag(name, challenger, f"test.baseline.{metric}",
                                 f"{baseline_score:.6f}")
    if champion == challenger:
        promoted, decision_reason = False, "challenger is already the champion"
    else:
        decision = decide_promotion(client, name, challenger, score, metric,
                                    champion_score=champion_score,
                                    min_improvement=config.min_improvement,
                                    baseline_score=baseline_score,
                                    baseline_difference=difference)
        record_decision(client, name, decision)
        promoted, decision_reason = decision.promote, decision.reason
        if decision.promote:
            move_alias(client, name, CHAMPION, challenger, actor="promotion gate",
                       reason=decision.reason)
    verdict = (f"v{challenger} promoted to {CHAMPION}: {decision_reason}" if promoted
               else f"v{challenger} NOT promoted: {decision_reason}")
    facets = evaluation.facet_table("all")
    margins = evaluation.margin_table()
    margins_text = (f"\n\nTagger - baseline and its {LEVEL:.0%} interval (a paired "
                    f"bootstrap: the {evaluation.n_test:,} test products resampled "
                    f"{RESAMPLES:,} times), overall and per head (accuracy of a single-valued "
                    f"facet, micro-F1 of a multi-valued one):\n\n"
                    f"{markdown_table(margins, max_chars=40)}" if margins.height else "")
    context.log.info(f"{verdict}\ntest split, {evaluation.n_test} products "
                     f"(tagger vs its backends and the baseline):\n"
                     f"{markdown_table(facets, max_chars=40)}{margins_text}")

    run_id = client.get_model_version(name, challenger).run_id
    table = evaluation.table()
    with tempfile.TemporaryDirectory(prefix="evaluation_") as tmp:
        table_path = Path(tmp) / "test_metrics.csv"
        table.write_csv(table_path)
        facets_path = Path(tmp) / "test_facets.csv"
        facets.write_csv(facets_path)
        margins_path = Path(tmp) / "test_margins.csv"
        margins.write_csv(margins_path)
        plot = plot_model_vs_baseline(evaluation, Path(tmp) / "model_vs_baseline.png")
        plot_markdown = png_markdown(plot, "tagger vs baseline")
        with mlflow_lib.start_run(run_id=run_id):
            mlflow_lib.log_artifact(str(table_path))
            mlflow_lib.log_artifact(str(facets_path))
            mlflow_lib.log_artifact(str(margins_path))
            mlflow_lib.log_artifact(str(plot))
    results = (f"**{verdict}**\n\nTest split, {evaluation.n_test} products "
               f"({evaluation.n_test_images} with a photo): accuracy (single-valued facets), "
               "micro-F1 and macro-F1 of the served tagger, each of its parts and the "
               "baseline (TF-IDF + LinearSVC, same split, same inputs).\n\n"
               + markdown_table(facets, max_chars=40) + margins_text)
    images = ("\n\n" + markdown_table(evaluation.facet_table("images"), max_chars=40)
              if evaluation.n_test_images else "")
    version_url = mlflow.model_version_url(name, challenger)
    return dg.MaterializeResult(metadata={
        "results": dg.MetadataValue.md(results),
        "decision": verdict,
        "promoted": promoted,
        "model_version": challenger,
        **({"logged_model_id": model_id} if model_id else {}),
        **({"model_version_url": dg.MetadataValue.url(version_url)} if version_url else {}),
        "champion_version": alias_version(client, name, CHAMPION) or "",
        f"challenger_{metric}": round(score, 4),
        f"baseline_{metric}": round(baseline_score, 4),
        **({f"difference_{metric}": round(difference.difference, 4),
            f"difference_{metric}_interval": f"{difference.low:+.4f} to {difference.high:+.4f} "
                                             f"({difference.level:.0%}, paired bootstrap)"}
           if difference is not None else {}),
        **({f"champion_{metric}": round(champion_score, 4)} if champion_score is not None
           else {}),
        "test_products": evaluation.n_test,
        "test_products_with_image": evaluation.n_test_images,
        "baseline_seconds": round(evaluation.baseline_seconds, 1),
        **({"results_photographed": dg.MetadataValue.md(images)} if images else {}),
        **{metric_key(k): round(v, 4) for k, v in metrics.items()},
        "model_vs_baseline": dg.MetadataValue.md(plot_markdown),
    })
