"""Shared pytest fixtures.

`tiny_model_dir` builds the tiny offline Qwen2 model (sdar_core.models.build_tiny_model with the
default TinyModelConfig) once per test session, in about a second after imports, and every test
that needs a model reuses it. Treat the directory as read-only: copy it (shutil.copytree) before
saving anything into it, so tests stay independent of their order.
"""

from pathlib import Path

import pytest


def tiny_run_config(out_dir: Path, model_dir: Path, **fields):
    """A RunConfig of the smallest embedded run on generated ALFWorld-like games (no warm start):
    `model_dir` copied to `out_dir/model` (reused by prepare_inputs), one task × 2 episodes of 2
    steps, 8 new tokens per turn; `fields` override the run's own fields (rounds, algorithm...)."""
    import shutil

    from sdar_core.evaluation import EvalConfig
    from sdar_core.rollout import RolloutConfig
    from sdar_core.run import RunConfig

    shutil.copytree(model_dir, out_dir / "model")
    defaults = {
        "out_dir": out_dir,
        "world": "alfworld",
        "rounds": 1,
        "n_train_games": 1,
        "n_valid_games": 1,
        "rollout": RolloutConfig(
            n_tasks=1, group_size=2, max_steps=2, max_new_tokens=8, show_progress=False
        ),
        "eval": EvalConfig(max_steps=2, max_new_tokens=8, show_progress=False),
    }
    return RunConfig(**(defaults | fields))


def carried_update_config(rounds: int, **fields):
    """An UpdateConfig that takes one optimizer step per round on a decaying schedule over
    `rounds`, so that every piece the trainer state carries across rounds (moments, schedule,
    counters) changes the result; `fields` override (algorithm, lr, lora...)."""
    from sdar_core.train import UpdateConfig

    defaults = dict(
        algorithm="grpo", lr=3e-3, mini_batch_size=None, lr_schedule="linear",
        min_lr_ratio=0.2, total_iterations=rounds,
    )  # fmt: skip
    return UpdateConfig(**(defaults | fields))


def update_rounds(start: Path, batches, out: Path, config) -> list[Path]:
    """Run one update per batch, each from the previous round's checkpoint with `start` as the
    KL reference; return [start, round0, round1, ...]."""
    from sdar_core.train import sdar_update

    models = [start]
    for r, batch in enumerate(batches):
        models.append(out / f"round{r}")
        sdar_update(models[-2], batch, models[-1], config, ref_model_dir=start)
    return models


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny Qwen2 checkpoint: config, safetensors, tokenizer, chat template."""
    from sdar_core.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model") / "model")


@pytest.fixture(scope="session")
def alfworld_games_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated ALFWorld games (3 train, 1 valid_seen, 1 valid_unseen), made once per session.

    Treat as read-only. Each game is verified by the expert on the real engine (~1 s each).
    """
    from sdar_core.envs.alfworld import generate_games

    out = tmp_path_factory.mktemp("alfworld_games") / "games"
    generate_games(out, n_train=3, n_valid_seen=1, n_valid_unseen=1, seed=5)
    return out


@pytest.fixture(scope="session")
def make_scored_trajectories(tiny_model_dir):
    """Factory: a synthetic scored trajectory artifact for the tiny model, in about 0.1 s.

    `make(out_dir, n_groups=2, group_size=4, teacher="noisy"|"student", seed=0)` writes groups of
    per-step samples with random prompt/response ids, old_logprobs computed by the model itself at
    temperature 1 (so the first update is on-policy), rewards 10 for the first half of each group
    and 0 for the rest, and teacher_logprobs equal to the student's or perturbed.
    """
    import torch

    from sdar_core.algos import token_logprobs
    from sdar_core.models import load_model
    from sdar_core.rollout.schema import SCORED_FEATURES, write_trajectories

    model = load_model(tiny_model_dir, dtype="float32")
    vocab = model.config.vocab_size

    def logprobs_of(prompt, response):
        ids = torch.tensor([prompt + response])
        with torch.no_grad():
            hidden = model.model(input_ids=ids).last_hidden_state[0]
        weight = model.get_output_embeddings().weight
        start = len(prompt)
        return token_logprobs(hidden[start - 1 : -1], weight, ids[0, start:]).tolist()

    def make(out_dir, *, n_groups=2, group_size=4, teacher="noisy", seed=0, env_name="alfworld"):
        gen = torch.Generator().manual_seed(seed)
        rows = {name: [] for name in SCORED_FEATURES}
        for g in range(n_groups):
            for m in range(group_size):
                n_prompt = int(torch.randint(6, 14, (1,), generator=gen))
                n_resp = int(torch.randint(3, 9, (1,), generator=gen))
                prompt = torch.randint(3, vocab, (n_prompt,), generator=gen).tolist()
                response = torch.randint(3, vocab, (n_resp,), generator=gen).tolist()
                old = logprobs_of(prompt, response)
                noise = torch.randn(n_resp, generator=gen).tolist()
                won = m < group_size // 2
                values = {
                    "prompt_ids": prompt,
                    "response_ids": response,
                    "response_mask": [1] * n_resp,
                    "old_logprobs": old,
                    "teacher_logprobs": old
                    if teacher == "student"
                    else [a + 0.5 * b for a, b in zip(old, noise, strict=True)],
                    "prompt_messages": "[]",
                    "layout": "per_step",
                    "round": 0,
                    "group_id": f"r0-g{g}",
                    "member": m,
                    "task_id": f"task{g}",
                    "task_type": "pick_and_place_simple",
                    "task_text": "t",
                    "step_index": 0,
                    "n_steps": 1,
                    "step_reward": 10.0 * won,
                    "episode_reward": 10.0 * won,
                    "won": won,
                    "invalid_action": False,
                    "n_invalid_actions": 0,
                    "truncated": False,
                    "episode_truncated": False,
                    "env_name": env_name,
                    "episode_seed": g,
                    "env_info": "[]",
                    "teacher_skills": "[]",
                    "teacher_skill_tokens": 0,
                }
                for name, value in values.items():
                    rows[name].append(value)
        meta = {"layout": "per_step", "round": 0, "config": {"temperature": 1.0}}
        return write_trajectories(
            out_dir, rows, kind="scored_trajectories", metadata=meta, summary={}
        )

    return make


# The modules that exercise transformers (model loading, tokenizers and chat templates, generation,
# log-probs, training): marked `transformers`, so CI runs them a second time under the GPU lock's
# transformers (`make test-gpu-lock`), whose version differs from the CPU lock's.
_TRANSFORMERS_MODULES = (
    "test_models",
    "test_rollout_",
    "test_teacher_",
    "test_train_",
    "test_locks",
)
_TRANSFORMERS_EXTRA = {"test_algos_logprobs", "test_pipeline_stages", "test_pipeline_envs"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        if module.startswith(_TRANSFORMERS_MODULES) or module in _TRANSFORMERS_EXTRA:
            item.add_marker(pytest.mark.transformers)
