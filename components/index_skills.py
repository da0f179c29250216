"""KFP component: index the skills bundled for an environment (BM25 + optional dense)."""

from kfp import dsl
from kfp.dsl import Artifact, Metrics, Output

from components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def index_skills(
    env: str,
    config_json: str,
    tracking_uri: str,
    run_id: str,
    skill_index: Output[Artifact],
    metrics: Output[Metrics],
):
    """config_json: an IndexConfig as JSON."""
    from sdar_core.run.failures import stage_failures
    from sdar_core.run.stages import Tracking, index_stage, log_metrics_output

    with stage_failures("index_skills"):
        flat = index_stage(env, skill_index.path, config_json, Tracking(tracking_uri, run_id))
        log_metrics_output(metrics, flat)
