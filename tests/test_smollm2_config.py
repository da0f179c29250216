"""The committed config of `make smollm2-run` (pipelines/runs/smollm2-miniature.json): a valid
RunConfig that trains SmolLM2 with LoRA on the first miniature world, sized for 2 CPU cores."""

from pathlib import Path

from sdar_core.run import RunConfig
from sdar_core.run.config import MINIATURE_STAGE_FIELDS, read_config_file

CONFIG = Path(__file__).parents[1] / "pipelines" / "runs" / "smollm2-miniature.json"


def test_the_smollm2_config_trains_lora_on_the_miniature():
    config = RunConfig.model_validate(read_config_file(CONFIG))
    assert config.model == "smollm2" and config.world == "miniature" and config.warm_start
    assert config.lora is None  # LoRA comes from the default for a given model on CPU
    assert config.sft.lora and config.update.lora
    assert config.sft.device == config.update.device == "cpu"
    # the miniature's skill-reading warm start and T 0.4 stay; the step limit is 5, not 7 (one
    # wrong place allowed: a searching start wins 0.125, the skill-reading ceiling 1.0, and most
    # rollout groups lose every episode, SDAR's regime; results page), on kind-balanced games
    assert config.sft.skills_fraction == MINIATURE_STAGE_FIELDS["sft"]["skills_fraction"]
    assert config.eval.max_steps == config.rollout.max_steps == 5
    assert config.eval.temperature == 0.4
    assert config.balanced_kinds
    # a LoRA adapter learns at a LoRA lr, not the full-weight 1e-6 of a given model's default
    assert config.update.lr == 5e-4 and config.sft.lr == 1e-3
    assert config.rounds >= 2 and config.rollout.group_size >= 2
    # lost groups stay flat (no invalid-action ranking) and the teacher's term weighs as much as
    # GRPO's (coefficient 1.0, the authors' 0.01 makes it ~1% of the gradient; results page)
    assert config.update.invalid_action_penalty == 0.0 and config.update.distill_coef == 1.0
    # 32 held-out games x 2 samples: 64 paired episodes, so that an RL gain of ~0.2 can be told
    # from 0 (over 32 episodes the paired interval is ~+-0.22 wide)
    assert config.n_valid_games == 32 and config.eval.k == 2
    # micro-batches of ~6 samples: the update's activations stay at ~4 GB instead of ~14 GB and it
    # takes 0.65x the time on 2 cores, with the same losses (results page, "The update on CPU")
    assert config.update.micro_batch_tokens == 1024
