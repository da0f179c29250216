"""Training stages: the RL update (`sdar_update`) and the supervised warm-start (`warmstart_sft`).

Both go through one code path: samples → mini-batches → token-budget micro-batches with gradient
accumulation → a backend engine ("torch" or "deepspeed", ZeRO-1/2/3) → an atomic checkpoint.
Log-probs always go through `sdar_core.algos.token_logprobs` (policy.PolicyHead).
"""

from sdar_core.train.batch import MicroBatch, Sample, collate, micro_batches, micro_weight
from sdar_core.train.config import LORA_TARGETS, SFTConfig, TrainConfig, UpdateConfig
from sdar_core.train.engines import ENGINES, make_engine
from sdar_core.train.loop import train_loop
from sdar_core.train.objective import rl_loss, sft_loss
from sdar_core.train.policy import PolicyHead, load_policy, reference_mode, save_checkpoint
from sdar_core.train.sft import expert_samples, warmstart_sft
from sdar_core.train.state import STATE_DIR, TrainerCounters, read_counters
from sdar_core.train.update import build_rl_samples, sample_rewards, sdar_update

__all__ = [
    "ENGINES",
    "STATE_DIR",
    "TrainerCounters",
    "LORA_TARGETS",
    "MicroBatch",
    "PolicyHead",
    "SFTConfig",
    "Sample",
    "TrainConfig",
    "UpdateConfig",
    "build_rl_samples",
    "collate",
    "expert_samples",
    "load_policy",
    "make_engine",
    "micro_batches",
    "micro_weight",
    "read_counters",
    "reference_mode",
    "rl_loss",
    "sample_rewards",
    "save_checkpoint",
    "sdar_update",
    "sft_loss",
    "train_loop",
    "warmstart_sft",
]
