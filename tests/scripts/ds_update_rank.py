"""One rank of a data-parallel update, run by tests/test_train_parallel.py under
torch.distributed.run: `python ds_update_rank.py MODEL TRAJECTORIES OUT CONFIG_JSON`. It is the
pipeline's own per-rank entry point (`sdar_core.run.launch_update`) with DeepSpeed's CPU
shared-memory all-reduce op marked incompatible, so gloo's all-reduce runs instead of a ~35 s
JIT build of that op."""

import sys

import deepspeed

from sdar_core.run.launch_update import main
from sdar_core.train.engines import _SHM_OP

deepspeed.ops.__compatible_ops__[_SHM_OP] = False
main(sys.argv[1:])
