"""Entry point of one update process under DeepSpeed's launcher (`update_stage`, num_gpus > 1).

    deepspeed --num_gpus N --module sdar_core.run.launch_update MODEL TRAJ OUT CONFIG_JSON [REF]

The launcher sets RANK / LOCAL_RANK / WORLD_SIZE for each process; `sdar_update` with the
"deepspeed" backend does the rest, each rank running its share of the micro-batches
(sdar_core/train/parallel.py). Rank 0 writes the update's whole metrics, wall-clock timings
included (the checkpoint's metrics.json leaves them out), to the JSON file that
`SDAR_UPDATE_METRICS` names, for the task to log. tests/test_train_parallel.py runs that code
with two CPU ranks under torch.distributed.run; DeepSpeed's launcher itself and NCCL on GPUs
are not exercised here.
"""

import json
import os
import sys
from pathlib import Path

from sdar_core.outputs import write_text_atomic
from sdar_core.run.failures import stage_failures
from sdar_core.train import UpdateConfig, sdar_update

METRICS_ENV = "SDAR_UPDATE_METRICS"


def main(argv: list[str]) -> None:
    model_dir, trajectories_dir, out_dir, config_json, *ref = argv
    # a rank that fails on bad input says so in one line and leaves the record the embedded
    # runner stops at (sdar_core/run/failures.py): the task itself only sees the launcher fail
    with stage_failures("sdar_update"):
        config = UpdateConfig.model_validate_json(config_json)
        ref_model_dir = ref[0] if ref else None
        metrics = sdar_update(
            model_dir, trajectories_dir, out_dir, config, ref_model_dir=ref_model_dir
        )
    target = os.environ.get(METRICS_ENV)
    if target and os.environ.get("RANK", "0") == "0":
        write_text_atomic(Path(target), json.dumps(metrics, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
