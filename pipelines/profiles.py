"""Where each stage runs: resources, images and retries per profile.

- "cluster": the stages that run the model (rollouts, teacher, update, warm start, evaluation)
  request `num_gpus` NVIDIA GPUs and run in the GPU image: the update and the warm start train on
  all of them, and rollouts, teacher scoring and evaluation run one worker process per GPU
  (their configs' `workers: "auto"`, sdar_core.workers), so no GPU of the node idles.
- "local": everything in the CPU image with no GPU request (a kind cluster on a laptop, or the
  embedded kfp.local run, which ignores resources and images altogether).

Memory strings have no decimals ("1536Mi", not "1.5Gi"): KFP rejects them (DESIGN.md §4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.images import CPU_IMAGE, GPU_IMAGE

__all__ = ["PROFILES", "RETRY", "RETRIED_STAGES", "Profile", "StageResources"]

Profile = Literal["cluster", "local"]


@dataclass(frozen=True)
class StageResources:
    cpu: str
    memory: str
    gpus: Literal[0, 1, "num_gpus"]
    image: str


def _cluster() -> dict[str, StageResources]:
    gpu = {"cpu": "8", "memory": "64Gi", "image": GPU_IMAGE}
    return {
        "start_tracking": StageResources("1", "1Gi", 0, CPU_IMAGE),
        "end_tracking": StageResources("1", "1Gi", 0, CPU_IMAGE),
        "index_skills": StageResources("2", "4Gi", 0, CPU_IMAGE),
        "warmstart_sft": StageResources(gpus="num_gpus", **gpu),
        "generate_rollouts": StageResources(gpus="num_gpus", **gpu),
        "score_teacher": StageResources(gpus="num_gpus", **gpu),
        "sdar_update": StageResources(gpus="num_gpus", **gpu),
        "evaluate": StageResources(gpus="num_gpus", **gpu),
    }


def _local() -> dict[str, StageResources]:
    small = StageResources("1", "1Gi", 0, CPU_IMAGE)
    model = StageResources("2", "4Gi", 0, CPU_IMAGE)
    return {
        "start_tracking": small,
        "end_tracking": small,
        "index_skills": small,
        "warmstart_sft": model,
        "generate_rollouts": model,
        "score_teacher": model,
        "sdar_update": model,
        "evaluate": model,
    }


PROFILES: dict[str, dict[str, StageResources]] = {"cluster": _cluster(), "local": _local()}

# Stages that talk to flaky things (model servers, environment engines, the retrieval server)
# retry with backoff: 30, 60, 120 s. A stage's failure that no retry fixes (bad input, a bug;
# sdar_core/run/failures.py) ends its task with exit status 3 and is not retried under the
# embedded runner (pipelines/task_failures.py). On a KFP cluster it is: the backend compiles this
# policy into an Argo retryStrategy with a limit and a back-off and no condition on the exit
# status (KFP's RetryPolicy has no field for one), so there such a failure of these stages costs
# 4 attempts and 210 s of back-off before the run fails.
RETRIED_STAGES = frozenset({"generate_rollouts", "score_teacher", "evaluate"})
RETRY = {
    "num_retries": 3,
    "backoff_duration": "30s",
    "backoff_factor": 2.0,
    "backoff_max_duration": "600s",
}
