"""Benchmark: our HF rollout decoding against transformers' `model.generate`, and batched vs
row-chunked prefill of long prompts.

1. Sampling throughput at the rollout's batch sizes: the same left-padded prompts (random token
   ids of `--prompt-tokens` minus 0..B-1 tokens, so rows are padded), the same sampling
   (temperature 1, top-p 1, no top-k), `--new-tokens` new tokens per row with no early stop
   (ours: a stop id that never occurs; generate: min_new_tokens = max_new_tokens). Ours is the
   rollout's own path, `HFBackend.generate` (per-row seeded generators, log-probs recorded);
   generate keeps nothing but the tokens. The two alternate (ours, generate, ours, …)
   `--repeats` times; printed: median tokens/s of each, the ratio ours / generate of each
   adjacent pair and its median (target >= 1.0), and the same ratio in process CPU seconds,
   which background load on a shared machine disturbs less than wall time.
2. Prefill of `--long-rows` x `--long-tokens` tokens: one forward over the whole batch vs row
   chunks (`prefill_tokens`), seconds, minor page faults and kernel (system) CPU seconds of this
   process during the prefill (getrusage), and the ratio batched / chunked.

    python benchmarks/decoding.py models/smollm2                       # batch 8 and 32, 12 x 2000
    python benchmarks/decoding.py models/smollm2 --batch-sizes 8 --long-rows 0   # decoding only
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--batch-sizes", default="8,32", help="comma-separated")
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--long-rows", type=int, default=12, help="0 skips the prefill part")
    parser.add_argument("--long-tokens", type=int, default=2000)
    parser.add_argument(
        "--chunks", default="2000,2048", help="prefill_tokens budgets to compare with batched"
    )
    return parser.parse_args()


def _prompts(vocab: int, rows: int, length: int, seed: int) -> list[list[int]]:
    import torch

    g = torch.Generator().manual_seed(seed)
    return [torch.randint(100, vocab - 1, (length - i,), generator=g).tolist() for i in range(rows)]


def _decoding(model, pad_id: int, batch: int, args) -> dict[str, float]:
    import torch

    from sdar_core.rollout import SamplingSettings
    from sdar_core.rollout.backends.hf import HFBackend, left_pad

    n = args.new_tokens
    prompts = _prompts(model.config.vocab_size, batch, args.prompt_tokens, seed=batch)
    settings = SamplingSettings(temperature=1.0, top_p=1.0, max_new_tokens=n)
    ours = HFBackend(model, settings=settings, stop_token_ids=[-1], pad_token_id=pad_id)
    ids, mask, _ = left_pad(prompts, pad_id=pad_id, device="cpu")

    def run_ours():
        return ours.generate(prompts, seeds=list(range(batch)))

    def run_generate():
        torch.manual_seed(0)
        return model.generate(
            input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_p=1.0,
            top_k=None, max_new_tokens=n, min_new_tokens=n, pad_token_id=pad_id,
        )  # fmt: skip

    times = {"ours": [], "generate": []}
    cpu = {"ours": [], "generate": []}
    for _ in range(args.repeats):
        for name, run in (("ours", run_ours), ("generate", run_generate)):
            started, started_cpu = time.perf_counter(), time.process_time()
            run()
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    pairs = [g / o for o, g in zip(times["ours"], times["generate"], strict=True)]
    cpu_pairs = [g / o for o, g in zip(cpu["ours"], cpu["generate"], strict=True)]
    return {
        "batch": batch, "prompt_tokens": args.prompt_tokens, "new_tokens": n,
        "ours_tokens_per_s": round(batch * n / statistics.median(times["ours"]), 2),
        "generate_tokens_per_s": round(batch * n / statistics.median(times["generate"]), 2),
        "ratio_ours_over_generate_median_of_pairs": round(statistics.median(pairs), 3),
        "ratio_per_pair": [round(r, 3) for r in pairs],
        "cpu_ratio_ours_over_generate_median": round(statistics.median(cpu_pairs), 3),
    }  # fmt: skip


def _prefill_once(model, ids, mask, positions, budget) -> dict[str, float]:
    import torch
    from transformers import StaticCache

    from sdar_core.rollout.backends.hf import prefill

    cache = StaticCache(config=model.config, max_cache_len=ids.shape[1] + 1)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with torch.no_grad():
        prefill(model, ids, mask, positions, cache, prefill_tokens=budget)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": round(seconds, 2),
        "minor_page_faults": after.ru_minflt - before.ru_minflt,
        "system_cpu_s": round(after.ru_stime - before.ru_stime, 2),
        "user_cpu_s": round(after.ru_utime - before.ru_utime, 2),
    }


def _prefill(model, pad_id: int, args) -> dict:
    from sdar_core.rollout.backends.hf import left_pad

    prompts = _prompts(model.config.vocab_size, args.long_rows, args.long_tokens, seed=7)
    ids, mask, positions = left_pad(prompts, pad_id=pad_id, device="cpu")
    budgets = [int(c) for c in args.chunks.split(",") if c]
    out = {"rows": args.long_rows, "tokens": args.long_tokens}
    out["batched"] = _prefill_once(model, ids, mask, positions, None)
    for budget in budgets:
        result = _prefill_once(model, ids, mask, positions, budget)
        result["ratio_batched_over_chunked"] = round(
            out["batched"]["seconds"] / result["seconds"], 3
        )
        out[f"chunks_of_{budget}_tokens"] = result
    return out


def main() -> None:
    import torch

    from sdar_core.models import load_model, load_tokenizer

    args = _parse()
    model = load_model(args.model_dir, dtype="float32")
    pad_id = int(load_tokenizer(args.model_dir).pad_token_id)
    print(json.dumps({"torch_threads": torch.get_num_threads()}), flush=True)
    for batch in (int(b) for b in args.batch_sizes.split(",") if b):
        print(json.dumps({"decoding": _decoding(model, pad_id, batch, args)}), flush=True)
    if args.long_rows:
        print(json.dumps({"prefill": _prefill(model, pad_id, args)}), flush=True)


if __name__ == "__main__":
    main()
