"""What carrying the trainer state across rounds costs: checkpoint size with and without it, and
the time an update spends saving and loading it.

    python benchmarks/trainer_state.py [--hidden 128 --layers 2] [--repeats 3]

Measured on the tiny model (or a wider one with --hidden/--layers/--intermediate): two rounds of
`sdar_update` (the second resumes the first's state) on a synthetic scored batch, with the torch
backend and with DeepSpeed ZeRO-2. Printed: the weights' bytes, the trainer state's bytes (and its
ratio to the weights), the state save and load seconds reported by the update (best of
--repeats), and the same sizes computed for Qwen2.5-3B (3.09e9 parameters) trained in full with
AdamW: bf16 weights 2 B/param, AdamW moments 2 × 4 B/param in float32 (plus DeepSpeed's float32
master copy, 4 B/param, with bf16 ZeRO).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdar_core.models import TinyModelConfig, build_tiny_model  # noqa: E402
from sdar_core.rollout.schema import SCORED_FEATURES, write_trajectories  # noqa: E402
from sdar_core.train import STATE_DIR, UpdateConfig, sdar_update  # noqa: E402

QWEN_3B_PARAMS = 3.09e9


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _batch(out: Path, vocab: int, n: int = 32) -> Path:
    gen = torch.Generator().manual_seed(0)
    rows = {name: [] for name in SCORED_FEATURES}
    for i in range(n):
        resp = 12
        values = {
            "prompt_ids": torch.randint(3, vocab, (48,), generator=gen).tolist(),
            "response_ids": torch.randint(3, vocab, (resp,), generator=gen).tolist(),
            "response_mask": [1] * resp,
            "old_logprobs": [-5.0] * resp,
            "teacher_logprobs": [-4.5] * resp,
            "prompt_messages": "[]", "layout": "per_step", "round": 0,
            "group_id": f"g{i // 8}", "member": i % 8, "task_id": "t", "task_type": "x",
            "task_text": "t", "step_index": 0, "n_steps": 1,
            "step_reward": 10.0 * (i % 2), "episode_reward": 10.0 * (i % 2), "won": bool(i % 2),
            "invalid_action": False, "n_invalid_actions": 0, "truncated": False,
            "episode_truncated": False, "env_name": "alfworld", "episode_seed": i,
            "env_info": "[]", "teacher_skills": "[]", "teacher_skill_tokens": 0,
        }  # fmt: skip
        for name, value in values.items():
            rows[name].append(value)
    meta = {"layout": "per_step", "round": 0, "config": {"temperature": 1.0}}
    return write_trajectories(out, rows, kind="scored_trajectories", metadata=meta, summary={})


def _measure(root: Path, model: Path, batch: Path, backend: str, repeats: int) -> dict:
    config = UpdateConfig(algorithm="sdar", lr=1e-4, mini_batch_size=16, backend=backend)
    best_save = best_load = float("inf")
    for r in range(repeats):
        first, second = root / f"{backend}-{r}-1", root / f"{backend}-{r}-2"
        m1 = sdar_update(model, batch, first, config, ref_model_dir=model)
        m2 = sdar_update(first, batch, second, config, ref_model_dir=model)
        best_save = min(best_save, m1["state_save_seconds"], m2["state_save_seconds"])
        best_load = min(best_load, m2["state_load_seconds"])
    state = _size(second / STATE_DIR)
    weights = (second / "model.safetensors").stat().st_size
    return {
        "weights_bytes": weights,
        "checkpoint_bytes_without_state": _size(second) - state,
        "trainer_state_bytes": state,
        "state_to_weights": state / weights,
        "state_save_seconds": best_save,
        "state_load_seconds": best_load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=None)
    parser.add_argument("--intermediate", type=int, default=None)
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    shape = {
        k: v
        for k, v in (
            ("hidden_size", args.hidden),
            ("intermediate_size", args.intermediate),
            ("num_hidden_layers", args.layers),
        )
        if v is not None
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = build_tiny_model(root / "model", config=TinyModelConfig(**shape))
        vocab = json.loads((model / "config.json").read_text())["vocab_size"]
        batch = _batch(root / "batch", vocab)
        params = sum(t.numel() for t in load_file(model / "model.safetensors").values())
        report = {"model_params": params}
        for backend in ("torch", "deepspeed"):
            report[backend] = _measure(root, model, batch, backend, args.repeats)
    report["qwen2.5_3b_computed"] = {
        "weights_bf16_gb": QWEN_3B_PARAMS * 2 / 1e9,
        "adamw_moments_fp32_gb": QWEN_3B_PARAMS * 8 / 1e9,
        "deepspeed_bf16_state_gb": QWEN_3B_PARAMS * (8 + 4) / 1e9,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
