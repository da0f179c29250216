"""Host memory of DeepSpeed's `load_checkpoint` when an update resumes (issue 20, item 4).

Every rank of a ZeRO-2 update reads DeepSpeed's module file (the whole model) and its own
optimizer shard (fp32 master weights + Adam's two moments for 1/N of the parameters) into host
memory before copying them to the device. This script measures that on CPU: a Qwen2-shaped model
with random weights, DeepSpeed ZeRO-2 with the gloo backend, N rank processes. Phase 1 (fresh
processes) takes one AdamW step and saves; phase 2 (fresh processes) builds the same engine, resets
each process's RSS high-water mark (`/proc/self/clear_refs`, 5), calls `load_checkpoint`, and
reports the high-water mark over the RSS before the load. The parent samples the ranks' summed RSS
every 2 ms (the pod's figure; a sample can miss a peak shorter than that). `--stagger` loads one
rank after another (a barrier per turn).

Usage:  python benchmarks/resume_memory.py [--ranks 1 2] [--hidden 256 512] [--stagger]
                                           [--optimizer adamw|sgd]
Prints one line per (hidden, ranks): sizes of the files, each rank's load peak above its
baseline, both forms of the formula, N × max(module, shard) and N × (module + shard), and the
ranks' summed RSS. Found (DeepSpeed 0.19.8): each rank peaks at max(module, shard) above its
baseline (the module's copy is released before the shard is read; `--optimizer sgd` makes the
module the larger one); on CPU the loaded shard stays as the live optimizer state, so
`--stagger` lowers the summed peak only a little there. Qwen2Config's defaults apart from the
sizes above (4 layers, vocabulary 32000); a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

MB = 2**20


def _rank_main(args: argparse.Namespace) -> None:
    import deepspeed
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False  # gloo is enough here
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=32000, hidden_size=args.hidden, intermediate_size=4 * args.hidden,
        num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
    )  # fmt: skip
    model = Qwen2ForCausalLM(config)
    if args.optimizer == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    else:  # no moments: the shard is the float32 master partition alone, smaller than the module
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    ds_config = {
        "train_micro_batch_size_per_gpu": 1,
        "zero_optimization": {"stage": 2},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 2**31 - 1,
    }
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config)
    tag = "trainer_state"
    if args.phase == "save":
        ids = torch.randint(0, 32000, (1, 16))
        engine.backward(engine(input_ids=ids, labels=ids).loss)
        engine.step()
        engine.save_checkpoint(args.ckpt, tag=tag, save_latest=False)
        return
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark restarts from now
    started = time.perf_counter()

    def load() -> None:
        path, _ = engine.load_checkpoint(args.ckpt, tag=tag, load_lr_scheduler_states=False)
        assert path is not None, "nothing loaded"

    one_rank_at_a_time(load) if args.stagger else load()
    seconds = time.perf_counter() - started
    peak = _status("VmHWM")
    record = {"rank": int(os.environ["RANK"]), "before": before, "peak": peak, "seconds": seconds}
    Path(args.out).write_text(json.dumps(record))


def one_rank_at_a_time(fn):
    """Call `fn` on every rank, one rank after another (a barrier per turn)."""
    import torch.distributed as dist

    for turn in range(dist.get_world_size()):
        if turn == dist.get_rank():
            fn()
        dist.barrier()


def _status(field: str) -> int:
    """A field of /proc/self/status in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _launch(phase, ranks, hidden, ckpt: Path, stagger: bool, out: Path, optimizer: str):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    procs = []
    for rank in range(ranks):
        env = os.environ | {
            "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(ranks),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1",
        }  # fmt: skip
        command = [
            sys.executable, __file__, "--rank-main", "--phase", phase, "--hidden", str(hidden),
            "--ckpt", str(ckpt), "--out", str(out / f"rank{rank}.json"), "--optimizer", optimizer,
        ] + (["--stagger"] if stagger else [])  # fmt: skip
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL))
    summed = _sample_rss(procs)
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"a rank of phase {phase} failed (exit {p.returncode})")
    return summed


def _sample_rss(procs) -> dict[str, int]:
    """The highest summed RSS of the ranks while they run, and the summed RSS seen just before
    the first rank's load (approximated by the lowest sum after the first peak of start-up)."""
    handles = [psutil.Process(p.pid) for p in procs]
    highest = 0

    def total() -> int:
        n = 0
        for h in handles:
            try:
                n += h.memory_info().rss
            except psutil.Error:
                pass
        return n

    stop = threading.Event()

    def loop() -> None:
        nonlocal highest
        while not stop.is_set():
            highest = max(highest, total())
            time.sleep(0.002)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    for p in procs:
        p.wait()
    stop.set()
    thread.join()
    return {"highest": highest}


def _measure(ranks: int, hidden: int, stagger: bool, optimizer: str) -> None:
    with tempfile.TemporaryDirectory(prefix="sdar-resume-mem-") as tmp:
        tmp = Path(tmp)
        ckpt = tmp / "ckpt"
        _launch("save", ranks, hidden, ckpt, False, tmp, optimizer)
        folder = ckpt / "trainer_state"
        module = sum(f.stat().st_size for f in folder.glob("*model_states.pt"))
        shards = sorted(f.stat().st_size for f in folder.glob("*optim_states.pt"))
        summed = _launch("load", ranks, hidden, ckpt, stagger, tmp, optimizer)
        records = [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(ranks)]
    deltas = [r["peak"] - r["before"] for r in records]
    print(
        f"hidden={hidden} {optimizer} ranks={ranks} stagger={stagger}: module file "
        f"{module / MB:.1f} MiB, optimizer shard {max(shards) / MB:.1f} MiB/rank; load peak "
        f"above baseline per rank {', '.join(f'{d / MB:.1f}' for d in deltas)} MiB (sum "
        f"{sum(deltas) / MB:.1f}); N x max(module, shard) = "
        f"{ranks * max(module, *shards) / MB:.1f} MiB, N x (module + shard) = "
        f"{ranks * (module + max(shards)) / MB:.1f} MiB; load "
        f"{max(r['seconds'] for r in records):.2f} s; ranks' summed RSS peak "
        f"{summed['highest'] / MB:.0f} MiB, summed baseline "
        f"{sum(r['before'] for r in records) / MB:.0f} MiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--stagger", action="store_true")
    parser.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    parser.add_argument("--rank-main", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=["save", "load"], help=argparse.SUPPRESS)
    parser.add_argument("--ckpt", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_main:
        args.hidden = args.hidden[0]
        _rank_main(args)
        return
    for hidden in args.hidden:
        for ranks in args.ranks:
            _measure(ranks, hidden, args.stagger, args.optimizer)


if __name__ == "__main__":
    main()
