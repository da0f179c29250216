"""Where each stage runs: resources, images and retries per profile.

- "cluster": the stages that run the model (rollouts, teacher, update, warm start, evaluation)
  request `num_gpus` NVIDIA GPUs and run in the GPU image: the update and the warm start train on
  all of them, and rollouts, teacher scoring and evaluation run one worker process per GPU
  (their configs' `workers: "auto"`, sdar_core.workers), so no GPU of the node idles.
- "local": everything in the CPU image with no GPU request (a kind cluster on a laptop, or the
  embedded kfp.local run, which ignores resources and images altogether).

Memory strings have no decimals ("1536Mi", not "1.5Gi"): KFP rejects them (DESIGN.md §4).

Pods that survive a long run on the cluster profile:

- GPU tasks mount a memory-backed emptyDir at /dev/shm (`shm`): the container default is 64 MiB,
  and NCCL across 8 ranks, DeepSpeed's launcher and vLLM's workers need more. Its pages count
  against the pod's memory limit, so `shm` is part of `memory`, not added to it.
- No CPU limit on the tasks that run models or environments (`cpu_limit=None`): a limit makes
  the kernel's CFS quota throttle every process of the pod once the pod's CPU time in a 100 ms
  period is spent, so 8 update ranks plus their data-loader threads, or a rollout's environment
  workers next to the engine, stall in bursts although the node has idle cores. The request
  still reserves `cpu`; memory keeps a limit equal to its request (a stage that outgrows it is
  stopped, not its neighbours).
- A per-attempt timeout (`timeout_s`, the pod's activeDeadlineSeconds through kfp-kubernetes'
  `set_timeout`; KFP 2.17's SDK has no task timeout of its own): a hung NCCL collective or a
  stuck engine would otherwise hold the node's GPUs forever. The figures are several times the
  authors' measured stage times for Qwen2.5-3B (DESIGN.md §4: update 774 s, generation 425 s per
  step on 4 A100s), generous enough for 7B and for the first download of a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.images import CPU_IMAGE, GPU_IMAGE

__all__ = ["PROFILES", "RETRY", "RETRIED_STAGES", "SHM_MOUNT", "Profile", "StageResources"]

SHM_MOUNT = "/dev/shm"

Profile = Literal["cluster", "local"]


@dataclass(frozen=True)
class StageResources:
    cpu: str  # the request; also the limit unless cpu_limit says otherwise
    memory: str  # request and limit
    gpus: Literal[0, 1, "num_gpus"]
    image: str
    cpu_limit: str | None | Literal["request"] = "request"  # None: no CPU limit
    shm: str | None = None  # size of a memory-backed /dev/shm (None: the runtime's 64 MiB)
    timeout_s: int | None = None  # per attempt (the pod's activeDeadlineSeconds)

    def cpu_limit_value(self) -> str | None:
        """The CPU limit to set, or None for none."""
        return self.cpu if self.cpu_limit == "request" else self.cpu_limit


HOUR = 3600
GPU_SHM = "16Gi"  # NCCL buffers for 8 ranks, data-loader and vLLM worker tensors


def _cluster() -> dict[str, StageResources]:
    gpu = {"cpu": "8", "memory": "64Gi", "image": GPU_IMAGE, "cpu_limit": None, "shm": GPU_SHM}
    return {
        "start_tracking": StageResources("1", "1Gi", 0, CPU_IMAGE, timeout_s=HOUR // 6),
        "end_tracking": StageResources("1", "1Gi", 0, CPU_IMAGE, timeout_s=HOUR // 6),
        "index_skills": StageResources("2", "4Gi", 0, CPU_IMAGE, cpu_limit=None, timeout_s=HOUR),
        "warmstart_sft": StageResources(gpus="num_gpus", timeout_s=12 * HOUR, **gpu),
        "generate_rollouts": StageResources(gpus="num_gpus", timeout_s=4 * HOUR, **gpu),
        "score_teacher": StageResources(gpus="num_gpus", timeout_s=2 * HOUR, **gpu),
        "sdar_update": StageResources(gpus="num_gpus", timeout_s=4 * HOUR, **gpu),
        "evaluate": StageResources(gpus="num_gpus", timeout_s=4 * HOUR, **gpu),
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
