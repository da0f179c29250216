"""KFP component: deterministic evaluation of one checkpoint on the validation games."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.images import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def evaluate(
    model: Input[Model],
    base_model: Input[Model],
    games: Input[Dataset],
    skill_index: Input[Artifact],
    config_json: str,
    algorithm: str,
    label: str,
    round: int,
    tracking_uri: str,
    run_id: str,
    results: Output[Artifact],
    metrics: Output[Metrics],
):
    """config_json: an EvalConfig as JSON; label names the checkpoint (start, final); the preset
    decides student_sees_skills (skills from skill_index in the prompt).
    base_model: the run's starting checkpoint, unused here but downloaded: a LoRA
    checkpoint names it as its base by local path, and KFP's launcher puts an artifact at the
    same path (from its URI) in every pod, so the adapter finds its base.
    """
    from sdar_core.run.failures import stage_failures
    from sdar_core.run.stages import Tracking, evaluate_stage, log_metrics_output
    from sdar_core.run.verify import file_record

    with stage_failures("evaluate", round):
        flat = evaluate_stage(
            model.path,
            games.path,
            results.path,
            config_json,
            algorithm=algorithm,
            label=label,
            round=round,
            tracking=Tracking(tracking_uri, run_id),
            index_dir=skill_index.path,
        )
        results.metadata.update(file_record(results.path))  # checked before a resumed run reuses it
        log_metrics_output(metrics, flat)
