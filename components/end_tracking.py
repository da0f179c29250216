"""KFP component: the exit handler's task, which ends the MLflow run however the pipeline ends."""

from kfp import dsl

from components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def end_tracking(
    tracking_uri: str, experiment: str, run_name: str, status: dsl.PipelineTaskFinalStatus
):
    """Marks the run FAILED (the pipeline failed) or KILLED (cancelled) unless it has ended."""
    from sdar_core.run.failures import stage_failures
    from sdar_core.run.stages import end_tracking_stage

    with stage_failures("end_tracking"):
        end_tracking_stage(tracking_uri, experiment, run_name, state=status.state)
