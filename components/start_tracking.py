"""KFP component: create the pipeline run's MLflow run and log the parameters once."""

from kfp import dsl

from components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def start_tracking(
    tracking_uri: str,
    experiment: str,
    run_name: str,
    algorithm: str,
    env: str,
    rounds: int,
    warm_start: bool,
    profile: str,
    model_uri: str,
    games_uri: str,
    inputs_json: str,
    index_config: str,
    sft_config: str,
    rollout_config: str,
    teacher_config: str,
    update_config: str,
    eval_config: str,
) -> str:
    """Returns the MLflow run id every later stage logs into. model_uri and games_uri are the
    importers' URIs (so they are part of this task's cache key); inputs_json holds their content
    hashes where the launcher could read them ({"model_sha256": ..., "data_sha256": ...})."""
    import json

    from sdar_core.run.failures import stage_failures
    from sdar_core.run.stages import start_tracking_stage

    configs = {
        "index_config": index_config,
        "sft_config": sft_config,
        "rollout_config": rollout_config,
        "teacher_config": teacher_config,
        "update_config": update_config,
        "eval_config": eval_config,
    }
    params = {"algorithm": algorithm, "env": env, "rounds": rounds, "warm_start": warm_start}
    params |= {name: json.loads(value) for name, value in configs.items()}
    inputs = {"model_uri": model_uri, "data_uri": games_uri} | json.loads(inputs_json)
    with stage_failures("start_tracking"):
        return start_tracking_stage(
            tracking_uri, experiment, run_name, params, inputs=inputs, profile=profile
        )
