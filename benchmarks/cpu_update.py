"""Benchmark: the update's time on CPU by micro-batch size (and glibc allocator settings).

Measured in session 7 (docs/results.md#the-update-on-cpu-micro-batch-size): an `sdar_update` of
SmolLM2 with LoRA on 2 cores spent about half its CPU time in the kernel, at ~80k minor page
faults a second, with a peak RSS of 12-14 GB. With the default `micro_batch_tokens` (8192) a
mini-batch of 32 miniature samples (~160 tokens each) is one micro-batch, whose activations
(eager attention, 30 layers) are faulted in afresh, page by page, for every micro-batch.

Each arm runs in a fresh child process (GLIBC_TUNABLES is read once, at start), the arms
alternate `--repeats` times, and each child times one update's compute on the same synthetic
batch: the start log-probs (no-grad passes) and `train_loop` of the `sdar` preset with a LoRA
adapter, as `sdar run` trains a given model on CPU. Samples are shaped like the miniature's
per-step samples (`--prompt-tokens`, `--response-tokens`). Printed per arm: median seconds,
kernel (system) CPU seconds and minor page faults of the child during the update (getrusage),
peak RSS, and the median of the paired time ratios arm / first arm.

The model is `model_dir` if given (any checkpoint `sdar import-model` wrote), else a randomly
initialised model of SmolLM2-135M's shape (no download).

    python benchmarks/cpu_update.py                   # micro_batch_tokens 8192, 2048, 1024
    python benchmarks/cpu_update.py --micro-batch-tokens 8192 --tunables default \\
        --tunables glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1099511627776
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

SMOLLM2_135M = dict(
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    vocab_size=49152,
    max_position_embeddings=8192,
    tie_word_embeddings=True,
)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", nargs="?", default=None)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--mini-batch-size", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=145)
    parser.add_argument("--response-tokens", type=int, default=17)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--micro-batch-tokens",
        default="8192,2048,1024",
        help="comma-separated UpdateConfig.micro_batch_tokens values, one arm each",
    )
    parser.add_argument(
        "--tunables",
        action="append",
        default=None,
        help="GLIBC_TUNABLES value of an arm (repeat the flag; 'default': none)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def _model(model_dir):
    import torch

    if model_dir is not None:
        from sdar_core.models import load_model

        return load_model(model_dir, dtype="float32")
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**SMOLLM2_135M))


def _child(args) -> dict:
    """One update's compute in this process; its time, kernel time and page faults."""
    import torch

    from sdar_core.algos import get_algorithm
    from sdar_core.train import PolicyHead, Sample, UpdateConfig, make_engine, rl_loss, train_loop
    from sdar_core.train.objective import RLSettings
    from sdar_core.train.policy import add_lora
    from sdar_core.train.update import add_start_logprobs

    base = _model(args.model_dir)
    config = UpdateConfig(
        algorithm="sdar",
        lora=True,
        mini_batch_size=args.mini_batch_size,
        micro_batch_tokens=int(args.micro_batch_tokens),
    )
    gen = torch.Generator().manual_seed(0)
    vocab = base.config.vocab_size
    model = add_lora(base, config)  # as the update stage trains a given model on CPU
    samples = []
    for i in range(args.samples):
        prompt = torch.randint(3, vocab, (args.prompt_tokens,), generator=gen).tolist()
        response = torch.randint(3, vocab, (args.response_tokens,), generator=gen).tolist()
        adv = [1.0 if i % 4 < 2 else -1.0] * args.response_tokens
        mask = [1.0] * args.response_tokens
        columns = {"response_mask": mask, "advantages": adv, "old_logprobs": [-1.0] * len(mask)}
        samples.append(Sample(prompt, response, columns))
    algo = get_algorithm("sdar")
    head = PolicyHead(
        model, temperature=1.0, chunk_size=config.chunk_size, with_entropy=algo.entropy_coeff > 0
    )
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    recompute = config.model_copy(update={"recompute_old_logprobs": True})
    add_start_logprobs(head, samples, algo, recompute, None, 0)
    for s in samples:
        s.columns["teacher_logprobs"] = [v + 0.5 for v in s.columns["old_logprobs"]]
    engine = make_engine(head, config, lr=1e-5, total_steps=1)
    settings = RLSettings(clip={}, iteration=1)
    train_loop(
        engine,
        samples,
        config,
        agg_mode=algo.agg_mode,
        pad_id=0,
        loss_fn=lambda lp, batch, step: rl_loss(lp, batch, algo, settings),
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": seconds,
        "system_seconds": after.ru_stime - before.ru_stime,
        "user_seconds": after.ru_utime - before.ru_utime,
        "minor_faults": after.ru_minflt - before.ru_minflt,
        "peak_rss_gib": after.ru_maxrss / 2**20,
    }


def _run_arm(args, tunables: str, micro_batch_tokens: int) -> dict:
    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    if tunables != "default":
        env["GLIBC_TUNABLES"] = tunables
    command = [sys.executable, __file__, "--child", "1", "--samples", str(args.samples)]
    command += ["--mini-batch-size", str(args.mini_batch_size)]
    command += ["--prompt-tokens", str(args.prompt_tokens)]
    command += ["--response-tokens", str(args.response_tokens)]
    command += ["--micro-batch-tokens", str(micro_batch_tokens)]
    command += [args.model_dir] if args.model_dir else []
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child with GLIBC_TUNABLES={tunables!r} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args = _parse()
    if args.child:
        print(json.dumps(_child(args)))
        return
    sizes = [int(v) for v in args.micro_batch_tokens.split(",")]
    arms = {
        f"micro_batch_tokens={size} GLIBC_TUNABLES={tunables}": (tunables, size)
        for tunables in (args.tunables or ["default"])
        for size in sizes
    }
    results: dict[str, list[dict]] = {name: [] for name in arms}
    for _ in range(args.repeats):
        for name, (tunables, size) in arms.items():
            results[name].append(_run_arm(args, tunables, size))
    report = {"batch": vars(args) | {"child": None}, "arms": {}}
    first = next(iter(results.values()))
    for name, runs in results.items():
        pairs = zip(runs, first, strict=True)
        paired = [r["seconds"] / d["seconds"] for r, d in pairs]
        report["arms"][name] = {
            "seconds_median": statistics.median(r["seconds"] for r in runs),
            "system_seconds_median": statistics.median(r["system_seconds"] for r in runs),
            "minor_faults_median": statistics.median(r["minor_faults"] for r in runs),
            "peak_rss_gib_max": max(r["peak_rss_gib"] for r in runs),
            "time_ratio_to_first_arm_median": statistics.median(paired),
            "runs": runs,
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
