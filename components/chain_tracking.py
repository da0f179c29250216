"""KFP components of a chained run's one MLflow run (pipelines/sdar_pipeline.py: chained runs):
the first chunk tags its run with the chain's id, a later chunk continues the run that carries
it, and a chunk that does not end the run leaves it RUNNING when it succeeds."""

from kfp import dsl

from components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def join_chain(tracking_uri: str, run_id: str, chain_id: str):
    """Tags the MLflow run `run_id` as the run of the chain `chain_id`."""
    from sdar_core.run.failures import stage_failures
    from sdar_core.run.stages import join_chain_stage

    with stage_failures("join_chain"):
        join_chain_stage(tracking_uri, run_id, chain_id)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def continue_chain(tracking_uri: str, experiment: str, chain_id: str, first_round: int) -> str:
    """Returns the id of the chain's MLflow run (marked RUNNING again); first_round is this
    chunk's first round (part of the cache key: each chunk continues the run anew)."""
    from sdar_core.run.failures import stage_failures
    from sdar_core.run.stages import continue_chain_stage

    with stage_failures("continue_chain"):
        return continue_chain_stage(tracking_uri, experiment, chain_id)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def end_chunk_tracking(
    tracking_uri: str, experiment: str, run_name: str, status: dsl.PipelineTaskFinalStatus
):
    """The exit handler of a chunk that does not end the run: marks the run FAILED (the chunk
    failed) or KILLED (cancelled); a chunk that succeeded leaves it RUNNING for the next."""
    from sdar_core.run.failures import stage_failures
    from sdar_core.run.stages import end_tracking_stage

    with stage_failures("end_tracking"):
        end_tracking_stage(tracking_uri, experiment, run_name, state=status.state, ends_run=False)
