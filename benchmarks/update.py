"""Benchmark: update throughput, and the cost of SDAR's distillation term relative to GRPO.

On the same batch, in one process, alternating the two presets for `--repeats` rounds and keeping
each one's best time:
1. update tokens per second (prompt + response tokens through forward and backward per second of
   optimizer steps) of the `grpo` and `sdar` presets — both with the k3 KL term against the
   starting model, computed up front as in `sdar_update`;
2. the SDAR-to-GRPO update time ratio (best time over best time, and the median of the ratios of
   back-to-back pairs, which is steadier on a shared machine). Target (issue 6): <= 1.05, since
   the distillation term is a few (B, T) element-wise operations on log-probs the policy loss
   needs anyway; the teacher's forward pass belongs to the scoring stage, not to the update.

The batch is synthetic and shaped like ALFWorld per-step samples: `--samples` sequences of
`--prompt-tokens` prompt and `--response-tokens` response tokens (random ids), rewards split within
groups of 8, teacher log-probs = old log-probs + noise. Defaults: the tiny model on CPU.

With `--gpu` (needs CUDA): the same on a Qwen2.5-1.5B-shaped model with random weights in bf16,
and model FLOPs utilisation = 6 · N_params · tokens/s / peak bf16 FLOP/s (`--peak-tflops`,
989 for an H100 SXM dense), ignoring attention FLOPs (small at these lengths).

    python benchmarks/update.py                    # tiny model, CPU, ~1-2 min on 2 busy cores
    python benchmarks/update.py --gpu --samples 64 --prompt-tokens 1024 --response-tokens 256
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sdar_core.algos import get_algorithm
from sdar_core.train import PolicyHead, Sample, UpdateConfig, make_engine, rl_loss, train_loop
from sdar_core.train.objective import RLSettings
from sdar_core.train.update import add_start_logprobs

QWEN25_1P5B = dict(
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    vocab_size=151936,
    tie_word_embeddings=True,
)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--response-tokens", type=int, default=64)
    parser.add_argument("--micro-batch-tokens", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu", action="store_true", help="1.5B-shaped bf16 model on CUDA")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    return parser.parse_args()


def _model(args, root: Path):
    if not args.gpu:
        from sdar_core.models import build_tiny_model, load_model

        path = build_tiny_model(root / "tiny")
        return load_model(path, dtype="float32"), "cpu", "float32"
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**QWEN25_1P5B, torch_dtype="bfloat16")
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    return model, "cuda", "bfloat16"


def _samples(args, vocab: int) -> list[Sample]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for i in range(args.samples):
        prompt = torch.randint(3, vocab, (args.prompt_tokens,), generator=gen).tolist()
        response = torch.randint(3, vocab, (args.response_tokens,), generator=gen).tolist()
        adv = 1.0 if (i % 8) < 4 else -1.0
        mask = [1.0] * args.response_tokens
        out.append(
            Sample(
                prompt,
                response,
                {"response_mask": mask, "advantages": [adv] * args.response_tokens},
            )
        )
    return out


def _time_update(model, samples, algo, config, step_count: int) -> dict:
    head = PolicyHead(model, temperature=1.0, chunk_size=None, with_entropy=algo.entropy_coeff > 0)
    engine = make_engine(head, config, lr=1e-6, total_steps=step_count)
    settings = RLSettings(clip={}, iteration=1)
    if torch.cuda.is_available() and config.device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    summary = train_loop(
        engine,
        samples,
        config,
        agg_mode=algo.agg_mode,
        pad_id=0,
        loss_fn=lambda lp, batch, step: rl_loss(lp, batch, algo, settings),
    )
    if config.device == "cuda":
        torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - started, "tokens_per_s": summary["tokens_per_s"]}


def main() -> None:
    args = _parse()
    with tempfile.TemporaryDirectory() as tmp:
        model, device, dtype = _model(args, Path(tmp))
    config = UpdateConfig(
        algorithm="sdar",
        device=device,
        dtype=dtype,
        micro_batch_tokens=args.micro_batch_tokens,
        mini_batch_size=max(1, args.samples // 2),
        shuffle=False,
    )
    samples = _samples(args, model.config.vocab_size)
    head = PolicyHead(model, temperature=1.0, chunk_size=None)
    sdar = get_algorithm("sdar")
    add_start_logprobs(
        head, samples, sdar, config.model_copy(update={"recompute_old_logprobs": True}), None, 0
    )
    gen = torch.Generator().manual_seed(1)
    for s in samples:
        noise = torch.randn(len(s.response_ids), generator=gen).tolist()
        s.columns["teacher_logprobs"] = [
            a + 0.3 * b for a, b in zip(s.columns["old_logprobs"], noise, strict=True)
        ]
    presets = {"grpo": get_algorithm("grpo"), "sdar": sdar}
    best: dict[str, dict] = {}
    paired: list[float] = []
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for _ in range(args.repeats):
        seconds = {}
        for name, algo in presets.items():
            model.load_state_dict(state)
            result = _time_update(model, samples, algo, config, step_count=2)
            seconds[name] = result["seconds"]
            if name not in best or result["seconds"] < best[name]["seconds"]:
                best[name] = result
        paired.append(seconds["sdar"] / seconds["grpo"])
    report = {
        "device": device,
        "dtype": dtype,
        "params": sum(p.numel() for p in model.parameters()),
        "batch": {
            "samples": args.samples,
            "prompt_tokens": args.prompt_tokens,
            "response_tokens": args.response_tokens,
            "optimizer_steps": 2,
        },
        "grpo": best["grpo"],
        "sdar": best["sdar"],
        "sdar_to_grpo_time_ratio": best["sdar"]["seconds"] / best["grpo"]["seconds"],
        "paired_ratio_median": statistics.median(paired),
        "paired_ratios": paired,
        "target_ratio": 1.05,
    }
    if args.gpu:
        flops = 6 * report["params"] * best["sdar"]["tokens_per_s"]
        report["mfu"] = flops / (args.peak_tflops * 1e12)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
