"""KFP component: teacher log-probs (the same weights, retrieved skills in the context)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.images import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def score_teacher(
    model: Input[Model],
    base_model: Input[Model],
    trajectories: Input[Dataset],
    skill_index: Input[Artifact],
    config_json: str,
    algorithm: str,
    round: int,
    tracking_uri: str,
    run_id: str,
    scored_trajectories: Output[Dataset],
    metrics: Output[Metrics],
):
    """config_json: a TeacherConfig as JSON.
    base_model: the run's starting checkpoint, unused here but downloaded: a LoRA
    checkpoint names it as its base by local path, and KFP's launcher puts an artifact at the
    same path (from its URI) in every pod, so the adapter finds its base.
    """
    from sdar_core.run.failures import stage_failures
    from sdar_core.run.stages import Tracking, log_metrics_output, teacher_stage

    with stage_failures("score_teacher", round):
        flat = teacher_stage(
            model.path,
            trajectories.path,
            skill_index.path,
            scored_trajectories.path,
            config_json,
            algorithm=algorithm,
            round=round,
            tracking=Tracking(tracking_uri, run_id),
        )
        log_metrics_output(metrics, flat)
