"""The committed config of `make replicate-miniature2` (pipelines/runs/miniature2-replicate.json):
the second miniature with the settings fixed before its replicate (results page)."""

from pathlib import Path

from sdar_core.run import RunConfig
from sdar_core.run.config import read_config_file

CONFIG = Path(__file__).parents[1] / "pipelines" / "runs" / "miniature2-replicate.json"


def test_the_miniature2_replicate_config():
    config = RunConfig.model_validate(read_config_file(CONFIG))
    assert config.world == "miniature2" and config.env == "alfworld" and config.warm_start
    # the minimum: 6 rounds; held-out success at rounds 0, 3 and 6
    assert config.rounds == 6 and config.eval_every == 3
    # winless groups stay flat for GRPO: with the authors' 0.1 per invalid step they rank their
    # episodes by invalid actions only, and in the trials both arms learned that instead of the
    # task (results page); SDAR's coefficient stays the preset's (the authors' 0.01)
    assert config.update.invalid_action_penalty == 0.0 and config.update.distill_coef is None
    # the teacher's ceiling is evaluated once, on the warm start; groups of 8, 64 held-out
    # episodes (32 games x 2), 2 detours in the skilled warm-start episodes (miniature2 defaults)
    assert config.ceiling and config.rollout.group_size == 8 and config.rollout.n_tasks == 8
    assert config.n_valid_games == 32 and config.eval.k == 2 and config.sft.skill_detours == 2
