"""The trainer state an RL update writes beside its weights, so that the next round resumes.

A checkpoint written by `sdar_update` holds, besides the weights, `trainer_state/`:

    trainer_state.json   counters and what wrote them: format, backend, optimizer, lora,
                         iteration (RL updates finished so far in the run; the next one is
                         iteration + 1), optimizer_step (optimizer steps taken so far), the
                         algorithm, and with `state_dir` the `location` of the optimizer state
    torch/optimizer.safetensors   (torch backend) every optimizer state tensor, keyed
                         "<parameter name>/<state name>" (AdamW: step, exp_avg, exp_avg_sq), plus
                         "rng/torch_cpu" (and "rng/cuda<i>") generator states
    torch/groups.json    the trained tensors' names and the optimizer's hyper-parameter groups
    deepspeed/           (deepspeed backend) DeepSpeed's own `save_checkpoint` folder: module
                         and ZeRO optimizer shards, one file per rank; loaded with its
                         `load_checkpoint`

With `UpdateConfig.state_dir` (a shared volume), the torch/ or deepspeed/ folder lives in its own
folder there instead (`iteration-NNNNN-<digest>`), and the checkpoint keeps only
trainer_state.json naming it. `prune_state_folders` removes the folders no resume can need.

Precision: with `UpdateConfig.weights_dtype` narrower than the training dtype (bfloat16 weights
from a float32 update), the checkpoint's weights are rounded copies, and the next update must not
train on from them. The trainer state therefore holds the float32 weights: DeepSpeed's folder has
its own module copy and, with ZeRO, the float32 master weights (restored by `load_checkpoint`,
which runs after the start log-probs: with `recompute_old_logprobs` those come from the rounded
weights the rollouts ran, not the float32 ones);
the torch backend writes `torch/master_weights.safetensors` (the trained tensors by name), which
the update loads over the checkpoint's weights before anything else runs. (A bfloat16 update
under DeepSpeed trains on float32 master weights kept in its optimizer state; under the torch
backend it trains bfloat16 weights directly, and there is nothing wider to keep.)

Every file of the trainer state is in the checkpoint's checksums.json (sdar_core.models.checksums;
with `state_dir`, the outside folder has its own), and `read_carried_state` verifies them before
anything is loaded: garbled moments are refused naming the file, never trained on. A checkpoint
an RL update wrote whose trainer_state/ is gone is refused too (resuming would silently start a
new optimizer and schedule), unless the update config says `trainer_state="fresh"`.

The torch format loads without pickle (safetensors + JSON). DeepSpeed's folder is DeepSpeed's
format (torch.save files, read back by DeepSpeed itself). The schedule has no state of its own:
it is a pure function of the iteration counter (engines.py). What the state costs: AdamW keeps
two float32 tensors per trained weight, so a full fine-tune checkpoint grows by 2 × 4 bytes per
trained parameter (DeepSpeed's folder also keeps its own copy of the module and, with ZeRO, the
float32 master weights).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from sdar_core.errors import ArtifactError
from sdar_core.models.checksums import recorded_files, verify_checksums
from sdar_core.outputs import manifest_of

__all__ = [
    "STATE_DIR",
    "TrainerCounters",
    "load_master_weights",
    "load_torch_optimizer",
    "prune_state_folders",
    "read_carried_state",
    "read_counters",
    "save_master_weights",
    "save_torch_optimizer",
    "seed_global_rng",
    "write_counters",
]

STATE_DIR = "trainer_state"
COUNTERS_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
GROUPS_FILE = "groups.json"
MASTER_FILE = "master_weights.safetensors"
STATE_FOLDER_PREFIX = "iteration-"
FORMAT = 1


@dataclass(frozen=True)
class TrainerCounters:
    """Where the run stands: RL updates finished and optimizer steps taken, and by what."""

    iteration: int = 0
    optimizer_step: int = 0
    backend: str | None = None
    optimizer: str | None = None
    lora: bool | None = None
    extra: dict = field(default_factory=dict)


def read_counters(model_dir: str | Path) -> TrainerCounters | None:
    """The counters carried by a checkpoint, or None when it has no trainer state (a base or
    warm-start model: the run's first update)."""
    path = Path(model_dir) / STATE_DIR / COUNTERS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ArtifactError(
                f"{path} has trainer-state format {data.get('format')!r}, this version reads "
                f"{FORMAT}: resume with the version that wrote it, or set trainer_state='fresh'"
            )
        return TrainerCounters(
            iteration=int(data["iteration"]),
            optimizer_step=int(data["optimizer_step"]),
            backend=data["backend"],
            optimizer=data["optimizer"],
            lora=bool(data["lora"]),
            extra={k: v for k, v in data.items() if k not in _COUNTER_KEYS},
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ArtifactError(
            f"{path} is not a valid trainer state ({type(err).__name__}: {err}): it was cut "
            "short or edited; re-run the update that wrote it, or set trainer_state='fresh'"
        ) from None


_COUNTER_KEYS = {"format", "iteration", "optimizer_step", "backend", "optimizer", "lora"}


def read_carried_state(model_dir: str | Path) -> TrainerCounters | None:
    """The counters of the trainer state `model_dir` carries, after checking every file of it
    against the checkpoint's checksums.json; None for a checkpoint no RL update wrote (a base or
    warm-start model). Raise ArtifactError naming the file when one is damaged, and when an RL
    update wrote the checkpoint but its trainer_state/ is gone."""
    model_dir = Path(model_dir)
    if (model_dir / STATE_DIR).is_dir():
        fix = "the trainer state is damaged: re-run the update that wrote it, or set "
        fix += "trainer_state='fresh' to start a new optimizer and schedule"
        verify_checksums(model_dir, subfolder=STATE_DIR, nested=True, fix=fix)
        counters = read_counters(model_dir)
        if counters is not None:
            return counters
    iteration = _written_by_update(model_dir)
    if iteration is None:
        return None
    raise ArtifactError(
        f"{model_dir} was written by RL update iteration {iteration} but its {STATE_DIR}/ "
        "(optimizer moments and counters) is missing: restore that folder or re-run the update "
        "that wrote it, or set trainer_state='fresh' in the update config to start a new "
        "optimizer and schedule"
    )


def _written_by_update(model_dir: Path) -> int | None:
    """The iteration of the RL update that wrote `model_dir` (its checksums list a trainer
    state, or its metrics.json an iteration), or None for any other checkpoint."""
    metrics = manifest_of(model_dir, "metrics.json") or {}
    iteration = metrics.get("iteration")
    listed = recorded_files(model_dir, subfolder=STATE_DIR, nested=True)
    is_number = isinstance(iteration, int | float) and not isinstance(iteration, bool)
    if listed or (is_number and iteration >= 1 and "optimizer_step" in metrics):
        return int(iteration) if is_number else 0
    return None


def write_counters(directory: Path, counters: TrainerCounters) -> None:
    data = {"format": FORMAT} | asdict(counters)
    extra = data.pop("extra")
    (directory / COUNTERS_FILE).write_text(json.dumps(data | extra, indent=2) + "\n")


def seed_global_rng(seed: int, iteration: int) -> None:
    """Seed torch's global generators (CPU and CUDA) from (seed, iteration) before a training
    process draws from them (a fresh LoRA adapter's weights, dropout). Torch seeds its CPU
    generator from the OS's entropy in every new process, so without this two runs with the same
    settings saved different "rng/torch_cpu" states, and unseeded draws differed too; a carried
    trainer state then restores the state the previous round saved (`load_torch_optimizer`)."""
    import hashlib

    digest = hashlib.blake2b(f"{seed}/global-rng/{iteration}".encode(), digest_size=8).digest()
    torch.manual_seed(int.from_bytes(digest, "little") >> 1)


def save_torch_optimizer(
    optimizer: torch.optim.Optimizer, names: list[str], directory: Path
) -> None:
    """The optimizer's state tensors (by parameter name) and RNG states as safetensors; its
    hyper-parameter groups as JSON (`groups.json`)."""
    from safetensors.torch import save_file

    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            value = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"{names[index]}/{key}"] = value.detach().cpu().contiguous()
    tensors["rng/torch_cpu"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, rng in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda{i}"] = rng
    save_file(tensors, str(directory / OPTIMIZER_FILE))
    groups = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
        for g in state["param_groups"]
    ]
    (directory / GROUPS_FILE).write_text(json.dumps({"names": names, "groups": groups}) + "\n")


def load_torch_optimizer(
    optimizer: torch.optim.Optimizer, names: list[str], directory: Path
) -> None:
    """Restore what `save_torch_optimizer` wrote into `optimizer` (same trained tensors)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = directory / OPTIMIZER_FILE
    try:
        tensors = load_file(str(path))
        saved = json.loads((directory / GROUPS_FILE).read_text())
    except (OSError, SafetensorError, ValueError) as err:
        raise ArtifactError(
            f"cannot read the optimizer state in {directory} ({err}): the checkpoint is "
            "incomplete; re-run the update that wrote it, or set trainer_state='fresh'"
        ) from None
    groups = _checked_groups(saved, directory / GROUPS_FILE, optimizer)
    if saved["names"] != names:
        missing = sorted(set(saved["names"]) ^ set(names))[:3]
        raise ArtifactError(
            f"the optimizer state in {directory} was written for other trained tensors (e.g. "
            f"{missing}): resume with the same model and lora settings, or set "
            "trainer_state='fresh'"
        )
    index = {name: i for i, name in enumerate(names)}
    state: dict[int, dict[str, torch.Tensor]] = {}
    try:
        for key, value in tensors.items():
            if key.startswith("rng/"):
                continue
            name, _, slot = key.rpartition("/")
            state.setdefault(index[name], {})[slot] = value
        optimizer.load_state_dict({"state": state, "param_groups": groups})
        torch.set_rng_state(tensors["rng/torch_cpu"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        first = str(err).splitlines()[0] if str(err) else ""
        raise ArtifactError(
            f"{path} does not fit {directory / GROUPS_FILE} and this optimizer "
            f"({type(err).__name__}: {first}): the trainer state was edited or damaged; re-run "
            "the update that wrote it, or set trainer_state='fresh'"
        ) from None
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            if f"rng/cuda{i}" in tensors:
                torch.cuda.set_rng_state(tensors[f"rng/cuda{i}"], i)


def _checked_groups(saved: object, path: Path, optimizer: torch.optim.Optimizer) -> list[dict]:
    """The hyper-parameter groups of a groups.json, after checking its shape against the live
    optimizer's: a "names" list, as many groups, each with the same settings holding values of
    the same kind (number, flag, None, list of as many numbers), and "params" that together
    index every trained tensor once; so an edited file is refused here, naming it, not deep
    inside torch or at the first step."""
    hint = "the trainer state was edited or damaged; re-run the update that wrote it, or set "
    hint += "trainer_state='fresh'"
    if not isinstance(saved, dict) or not isinstance(saved.get("names"), list):
        raise ArtifactError(f"{path} has no 'names' list: {hint}")
    groups, live = saved.get("groups"), optimizer.param_groups
    if not isinstance(groups, list) or len(groups) != len(live):
        raise ArtifactError(f"{path} does not hold {len(live)} optimizer group(s): {hint}")
    for number, (group, want) in enumerate(zip(groups, live, strict=True)):
        if not isinstance(group, dict) or set(group) != set(want):
            raise ArtifactError(f"{path}: group {number} lacks or adds settings: {hint}")
        for key, value in group.items():
            if key != "params" and _kind(value) != _kind(want[key]):
                raise ArtifactError(f"{path}: group {number} has {key}={value!r}: {hint}")
    params = [i for g in groups for i in (g["params"] if isinstance(g["params"], list) else [""])]
    n_tensors = sum(len(g["params"]) for g in live)
    if not all(_is_int(i) for i in params) or sorted(params) != list(range(n_tensors)):
        raise ArtifactError(
            f"{path}: the groups' 'params' do not index the {n_tensors} trained tensors once "
            f"each: {hint}"
        )
    return groups


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: object) -> object:
    """What a setting holds: a flag, a number, None, or a list of n numbers."""
    if isinstance(value, bool) or value is None:
        return type(value)
    if isinstance(value, int | float):
        return float
    if isinstance(value, list | tuple) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        return (list, len(value))
    return type(value)


def save_master_weights(named: list[tuple[str, torch.Tensor]], directory: Path) -> None:
    """The trained tensors at training precision, by parameter name (module docstring)."""
    from safetensors.torch import save_file

    tensors = {name: p.detach().cpu().contiguous() for name, p in named}
    save_file(tensors, str(directory / MASTER_FILE))


def load_master_weights(module: torch.nn.Module, directory: Path) -> bool:
    """Copy the weights `save_master_weights` wrote in `directory` (if any) into `module`'s
    parameters of the same names; return whether there were any. A name the module lacks, or a
    shape that differs, is refused: the state belongs to another model."""
    from safetensors.torch import load_file

    path = directory / MASTER_FILE
    if not path.is_file():
        return False
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, value in load_file(str(path)).items():
            if name not in params or params[name].shape != value.shape:
                raise ArtifactError(
                    f"{path} holds {name!r} {tuple(value.shape)}, which this model does not "
                    "have: resume with the model that wrote it, or set trainer_state='fresh'"
                )
            params[name].copy_(value.to(params[name].dtype))
    return True


def prune_state_folders(root: Path, keep: set[Path | None]) -> list[Path]:
    """Remove the state folders under `root` (a training run's folder on the shared volume) that
    no resume or retry can need; return what was removed.

    Rule: an update keeps the folder it wrote and the folder it resumed from; every other
    `iteration-*` folder (older iterations, and those of abandoned attempts) and every leftover
    `.iteration-*.tmp` of an interrupted write goes. Why these two: the next update resumes from
    the newest finished checkpoint, which names the folder just written; a retry of this update
    (or a re-run from the previous checkpoint) resumes from the folder this one resumed from.
    Runs on rank 0 after the checkpoint is in place; the updates of one training run are
    sequential, so nothing else writes under `root` meanwhile."""
    import shutil

    kept = {Path(p).resolve() for p in keep if p is not None}
    removed = []
    for folder in sorted(Path(root).iterdir()) if Path(root).is_dir() else []:
        name = folder.name
        ours = name.startswith(STATE_FOLDER_PREFIX) or (
            name.startswith("." + STATE_FOLDER_PREFIX) and name.endswith(".tmp")
        )
        if ours and folder.is_dir() and folder.resolve() not in kept:
            shutil.rmtree(folder)
            removed.append(folder)
    return removed
