"""One rank of a data-parallel update, run by tests/test_train_parallel.py under
torch.distributed.run: `python ds_update_rank.py MODEL SCORED OUT STAGE MINI_BATCH MICRO_TOKENS`.
Rank 0 prints the metrics as one JSON line."""

import json
import os
import sys

import deepspeed

from sdar_core.train import UpdateConfig, sdar_update

# the CPU shared-memory all-reduce op would be JIT-compiled (~35 s); gloo's all-reduce is used
deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False

model, scored, out, stage, mini_batch, micro_tokens = sys.argv[1:7]
config = UpdateConfig(
    algorithm="sdar",
    backend="deepspeed",
    zero_stage=int(stage),
    lr=0.05,
    optimizer="sgd",
    weight_decay=0.0,
    mini_batch_size=int(mini_batch),
    micro_batch_tokens=int(micro_tokens),
    max_grad_norm=None,
    shuffle=False,
)
metrics = sdar_update(model, scored, out, config)
if int(os.environ["RANK"]) == 0:
    floats = {k: v for k, v in metrics.items() if isinstance(v, float)}
    print("METRICS " + json.dumps(floats))
