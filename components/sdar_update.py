"""KFP component: the RL update (GRPO + the preset's extra loss) on one round's trajectories."""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.images import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def sdar_update(
    model: Input[Model],
    reference: Input[Model],
    trajectories: Input[Dataset],
    config_json: str,
    algorithm: str,
    round: int,
    total_rounds: int,
    num_gpus: int,
    tracking_uri: str,
    run_id: str,
    checkpoint: Output[Model],
    metrics: Output[Metrics],
    state_volume: Optional[str] = None,  # noqa: UP045 (kfp does not read `str | None`)
):
    """model: the previous round's checkpoint (weights + trainer state); reference: the run's
    starting model (the KL reference of every round); config_json: an UpdateConfig as JSON;
    num_gpus > 1 launches DeepSpeed on every GPU; state_volume: a shared volume's mount (the
    run's KFP workspace or a PVC) where the trainer state lives, keyed by run_id; None: inside
    the checkpoint."""
    from sdar_core.run.failures import stage_failures
    from sdar_core.run.stages import Tracking, log_metrics_output, update_stage

    with stage_failures("sdar_update", round):
        flat = update_stage(
            model.path,
            reference.path,
            trajectories.path,
            checkpoint.path,
            config_json,
            algorithm=algorithm,
            round=round,
            total_rounds=total_rounds,
            num_gpus=num_gpus,
            state_volume=state_volume,
            tracking=Tracking(tracking_uri, run_id),
        )
        log_metrics_output(metrics, flat)
