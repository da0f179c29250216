"""KFP component: supervised warm start of the policy on expert play."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.images import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def warmstart_sft(
    model: Input[Model],
    games: Input[Dataset],
    skill_index: Input[Artifact],
    config_json: str,
    tracking_uri: str,
    run_id: str,
    checkpoint: Output[Model],
    metrics: Output[Metrics],
):
    """config_json: an SFTConfig as JSON; skill_index: the skills put into the prompt of the
    config's skills_fraction of the expert episodes."""
    from sdar_core.run.failures import stage_failures
    from sdar_core.run.stages import Tracking, log_metrics_output, warmstart_stage

    with stage_failures("warmstart_sft"):
        flat = warmstart_stage(
            model.path,
            games.path,
            skill_index.path,
            checkpoint.path,
            config_json,
            Tracking(tracking_uri, run_id),
        )
        log_metrics_output(metrics, flat)
