"""Registry jobs an engineer launches to overrule the gate: promote a version, or roll back."""

import dagster as dg

from tag_pipeline.defs.resources import MlflowResource


class PromoteModelConfig(dg.Config):
    """Which registered version becomes champion, who asks and why."""

    version: str
    actor: str = "engineer"
    reason: str = "promoted by hand"


class RollbackModelConfig(dg.Config):
    """Who rolls the champion back and why."""

    actor: str = "engineer"
    reason: str = "rolled back by hand"


@dg.op
def promote_model(context: dg.OpExecutionContext, config: PromoteModelConfig,
                  mlflow: MlflowResource) -> None:
    """Point the champion alias at the configured version, recording who and why."""
    from tag_pipeline.lib.registry import CHAMPION, move_alias

    previous = move_alias(mlflow.client(), mlflow.registered_model_name, CHAMPION,
                          config.version, actor=config.actor, reason=config.reason)
    context.log.info(f"champion: v{previous} -> v{config.version} ({config.reason})")


@dg.op
def rollback_model(context: dg.OpExecutionContext, config: RollbackModelConfig,
                   mlflow: MlflowResource) -> None:
    """Point the champion alias back at the version it replaced."""
    from tag_pipeline.lib.registry import rollback

    current, previous = rollback(mlflow.client(), mlflow.registered_model_name,
                                 actor=config.actor, reason=config.reason)
    context.log.info(f"champion rolled back: v{current} -> v{previous}")


@dg.job(description="Make a registered tagger version the champion (overrules the gate).")
def promote_model_job() -> None:
    promote_model()


@dg.job(description="Give the champion alias back to the version it replaced.")
def rollback_model_job() -> None:
    rollback_model()
