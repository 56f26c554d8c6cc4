"""The GAN tag refiner: trained on the champion tagger's outputs, measured against the tagger
alone on the test split, registered with the same alias rules, applied only if it passes."""

import tempfile
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from tag_pipeline.defs.model.assets import load_feature_set
from tag_pipeline.defs.policies import WAREHOUSE_POOL
from tag_pipeline.defs.resources import MlflowResource
from tag_pipeline.defs.retries import retry_only_transient
from tag_pipeline.lib.models.refiner_config import GATE_TOLERANCE, RefinerConfig
from tag_pipeline.lib.warehouse import markdown_table, replace_table

_DEFAULTS = RefinerConfig()


class TagRefinerConfig(dg.Config):
    """Refiner hyper-parameters (defaults: ``RefinerConfig``'s) and its gate."""

    epochs: int = _DEFAULTS.epochs
    batch_size: int = _DEFAULTS.batch_size
    noise_dim: int = _DEFAULTS.noise_dim
    hidden_dim: int = _DEFAULTS.hidden_dim
    learning_rate: float = _DEFAULTS.learning_rate
    critic_steps: int = _DEFAULTS.critic_steps
    gp_weight: float = _DEFAULTS.gp_weight
    supervised_weight: float = _DEFAULTS.supervised_weight
    noise_samples: int = _DEFAULTS.noise_samples
    seed: int = _DEFAULTS.seed
    tolerance: float = GATE_TOLERANCE
    gate_metric: str = "micro_f1"


@dg.asset(group_name="refiner", deps=["tag_model_evaluation"],
          kinds={"tensorflow", "keras", "mlflow"}, pool=WAREHOUSE_POOL)
@retry_only_transient
def tag_refiner(context: dg.AssetExecutionContext, config: TagRefinerConfig,
                duckdb: DuckDBResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """Train the conditional GAN refiner on the champion tagger; ablate it on the test split."""
    import mlflow as mlflow_lib

    from tag_pipeline.lib.models.bundle import save_bundle
    from tag_pipeline.lib.models.refiner import (
        ablate,
        refiner_gate,
        save_refiner,
        train_refiner,
    )
    from tag_pipeline.lib.models.refiner_pyfunc import log_refiner
    from tag_pipeline.lib.models.registry_models import (
        ABLATION_APPLY_TAG,
        ABLATION_REASON_TAG,
        TAGGER_VERSION_TAG,
        champion_tagger_version,
        load_tagger,
    )
    from tag_pipeline.lib.models.serving import tagger_outputs
    from tag_pipeline.lib.models.tracking import ensure_experiment
    from tag_pipeline.lib.registry import (
        CHALLENGER,
        CHAMPION,
        PromotionDecision,
        alias_version,
        decide_promotion,
        ensure_registered_model,
        move_alias,
        record_decision,
    )

    mlflow.activate()
    client = mlflow.client()
    tagger_version = champion_tagger_version(client, mlflow.registered_model_name)
    bundle = load_tagger(mlflow.registered_model_name, tagger_version)
    features = load_feature_set(duckdb)
    outputs = {}
    for split in ("train", "val", "test"):
        outputs[split] = tagger_outputs(bundle, features.split(split))
        context.log.info(f"tagger v{tagger_version} outputs for {split}: "
                         f"{features.split(split).height} products")
    settings = config.model_dump(exclude={"tolerance", "gate_metric"})
    refiner_config = RefinerConfig.from_dict(settings)
    experiment_id = ensure_experiment(client, mlflow.experiment_name, mlflow.artifact_location)
    name = mlflow.refiner_model_name
    with mlflow_lib.start_run(experiment_id=experiment_id,
                              tags={"dagster_run_id": context.run_id,
                                    "dagster_asset": "tag_refiner",
                                    TAGGER_VERSION_TAG: tagger_version}) as run:
        mlflow_lib.log_params({**{k: str(v) for k, v in refiner_config.to_dict().items()},
                               "tolerance": config.tolerance, "gate_metric": config.gate_metric,
                               TAGGER_VERSION_TAG: tagger_version})

        def on_epoch_end(epoch: int, logs: dict[str, float]) -> None:
            mlflow_lib.log_metrics({f"refiner.{k}": v for k, v in logs.items()}, step=epoch)
            shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(logs.items()))
            context.log.info(f"refiner epoch {epoch + 1}/{refiner_config.epochs}: {shown}")

        emb, scores = outputs["train"]
        refiner = train_refiner(emb, scores, features.targets["train"], features.space,
                                refiner_config,
                                val=(*outputs["val"], features.targets["val"]),
                                on_epoch_end=on_epoch_end, tagger_thresholds=bundle.thresholds)
        refined_heads = (list(refiner.refined_heads) if refiner.refined_heads is not None
                         else list(features.space.head_names))
        mlflow_lib.log_param("refined_heads", ",".join(refined_heads) or "none")
        context.log.info(f"refiner: refines {', '.join(refined_heads) or 'no head'} (validation "
                         "beat the tagger there); the other heads keep the tagger's tags")
        ablation = ablate(refiner, bundle.thresholds, *outputs["test"], features.targets["test"])
        apply, reason = refiner_gate(ablation, tolerance=config.tolerance,
                                     metric=config.gate_metric)
        table = ablation.table()
        with duckdb.get_connection() as con:
            replace_table(con, "refiner_ablation", table)
        mlflow_lib.log_metrics({f"ablation.{model.replace('+', '_')}.{metric}": value
                                for model, row in ablation.rows.items()
                                for metric, value in row.items()})
        with tempfile.TemporaryDirectory(prefix="refiner_") as tmp:
            table_path = Path(tmp) / "ablation.csv"
            table.write_csv(table_path)
            mlflow_lib.log_artifact(str(table_path))
            refiner_dir = save_refiner(refiner, Path(tmp) / "refiner")
            bundle_dir = save_bundle(bundle, Path(tmp) / "bundle")
            example = features.split("val").head(3).select(
                "product_id", "title", "description", "image_path").to_pandas()
            info = log_refiner(refiner_dir, bundle_dir, name="model", input_example=example)
        ensure_registered_model(client, name)
        version = str(mlflow_lib.register_model(info.model_uri, name).version)
    for key, value in {TAGGER_VERSION_TAG: tagger_version, "dagster_run_id": context.run_id,
                       ABLATION_APPLY_TAG: str(apply).lower(), ABLATION_REASON_TAG: reason}.items():
        client.set_model_version_tag(name, version, key, value)
    metric = config.gate_metric
    score = float(ablation.rows["tagger+refiner"][metric])
    client.set_model_version_tag(name, version, f"test.{metric}", f"{score:.6f}")
    move_alias(client, name, CHALLENGER, version, actor=f"dagster run {context.run_id}",
               reason="newly trained")
    promoted = False
    if apply:
        # Same rule as the tagger, among refiners of the same tagger version: the champion
        # refiner of an older tagger cannot be compared (its test scores came from other inputs).
        champion = alias_version(client, name, CHAMPION)
        same_tagger = champion is not None and client.get_model_version(
            name, champion).tags.get(TAGGER_VERSION_TAG) == tagger_version
        decision = decide_promotion(client, name, version, score, metric) if same_tagger \
            else PromotionDecision(True, version, score, champion, None, metric,
                                   f"no champion refiner for tagger v{tagger_version} yet")
        record_decision(client, name, decision)
        promoted = decision.promote
        if promoted:
            move_alias(client, name, CHAMPION, version, actor="refiner gate",
                       reason=decision.reason)
    context.log.info(f"refiner v{version} on tagger v{tagger_version}: ablation "
                     f"{'passed' if apply else 'failed'} ({reason}); champion: {promoted}")
    url = mlflow.run_url(experiment_id, run.info.run_id)
    version_url = mlflow.model_version_url(name, version)
    return dg.MaterializeResult(metadata={
        "refiner_version": version,
        **({"model_version_url": dg.MetadataValue.url(version_url)} if version_url else {}),
        "tagger_version": tagger_version,
        "ablation_passed": apply,
        "ablation_decision": reason,
        "refined_heads": ", ".join(refined_heads) or "none",
        "promoted": promoted,
        "mlflow_run_id": run.info.run_id,
        **({"mlflow_run_url": dg.MetadataValue.url(url)} if url else {}),
        **{f"{model.replace('+', '_')}.{metric}": round(float(value), 4)
           for model, row in ablation.rows.items() for metric, value in row.items()},
        "ablation": dg.MetadataValue.md(markdown_table(table)),
    })
