"""The plan of a compiled run on a cluster: what `sdar compile` prints after writing.

For a list of compiled packages (one per run; a long run chained into several runs gives several)
and the recipe's model, `plan` gives:

- per run: rounds, tasks (container and importer steps) and the estimated Argo Workflow size
  (pipelines/argo_size.py) as a share of the budget (WORKFLOW_BUDGET_BYTES);
- the GPUs of each model stage (the profile's; pipelines/profiles.py);
- the bytes each round moves through artifact storage, computed from the model's parameter count
  P: BEFORE, the checkpoint artifact carries the trainer state (bf16 weights 2P, DeepSpeed's own
  bf16 module copy 2P, fp32 master weights 4P, Adam's two fp32 moments 8P) and is downloaded by
  the rollouts, the teacher and the update and uploaded by the update; AFTER (weights-only
  artifacts: the trainer state stays on the run's volume), the checkpoint is the bf16 weights
  and small JSON. Both also count the start model (bf16 weights) that the same stages download
  every round as their KL reference / LoRA base. Trajectories and metrics (megabytes) are left
  out;
- an ESTIMATED round time: the authors' measured step for Qwen2.5-3B on 4 A100s
  (ZJU-REAL/SDAR#51, DESIGN.md §4: 16 tasks x 8 episodes of at most 50 steps; generation 425 s,
  teacher 260 s, reference and old log-probs 354 s, update 774 s) scaled linearly by parameter
  count, by episodes x max steps of the rollout config, and inversely by the stage's GPUs (ours:
  rollouts and teacher on their stage's GPUs, log-probs and update on the update's). It assumes
  A100-class GPUs, perfect scaling and as many steps per episode as the authors' run; it is a
  planning figure, not a measurement.

The parameter count comes from the model's config.json (a local folder) or, for a hub id that
cannot be downloaded here, from the public config.json shapes of the recipe models (`SHAPES`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.argo_size import WORKFLOW_BUDGET_BYTES, estimate_workflow_bytes, load_package
from sdar_core.errors import ConfigError

__all__ = ["SHAPES", "ModelShape", "Plan", "format_plan", "model_shape", "plan"]


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a Qwen2-style decoder (config.json fields) that fix its parameter count."""

    hidden: int  # hidden_size
    layers: int  # num_hidden_layers
    intermediate: int  # intermediate_size
    vocab: int  # vocab_size
    heads: int  # num_attention_heads
    kv_heads: int  # num_key_value_heads
    tied: bool  # tie_word_embeddings

    @property
    def params(self) -> int:
        """Embedding, per layer (q/k/v with biases, o without, gated MLP, two RMSNorms), final
        norm, and the LM head unless tied to the embedding."""
        h, kv = self.hidden, self.hidden // self.heads * self.kv_heads
        attention = (h * h + h) + 2 * (h * kv + kv) + h * h
        layer = attention + 3 * h * self.intermediate + 2 * h
        head = 0 if self.tied else self.vocab * h
        return self.vocab * h + self.layers * layer + h + head


# from the models' public config.json (huggingface.co/Qwen/<name>/blob/main/config.json); the
# Instruct models share their base model's shape
SHAPES = {
    "Qwen/Qwen2.5-0.5B": ModelShape(896, 24, 4864, 151936, 14, 2, tied=True),
    "Qwen/Qwen2.5-1.5B": ModelShape(1536, 28, 8960, 151936, 12, 2, tied=True),
    "Qwen/Qwen2.5-3B": ModelShape(2048, 36, 11008, 151936, 16, 2, tied=True),
    "Qwen/Qwen2.5-7B": ModelShape(3584, 28, 18944, 152064, 28, 4, tied=False),
}

# the authors' step (ZJU-REAL/SDAR#51): Qwen2.5-3B, ALFWorld, 16 tasks x 8, 4 A100s
MEASURED_GPUS = 4
MEASURED_WORK = 16 * 8 * 50  # episodes x max steps
MEASURED_SHAPE = "Qwen/Qwen2.5-3B"
MEASURED_SECONDS = {"generation": 425, "teacher": 260, "log-probs": 354, "update": 774}
_STAGE_OF = {
    "generation": "generate_rollouts",
    "teacher": "score_teacher",
    "log-probs": "sdar_update",
    "update": "sdar_update",
}
MODEL_STAGES = ("warmstart_sft", "generate_rollouts", "score_teacher", "sdar_update", "evaluate")
_GB = 1e9


def model_shape(model: str) -> ModelShape | None:
    """The shape of `model`: a folder with a config.json, or a hub id in SHAPES (an Instruct
    model's suffix ignored); None if neither."""
    folder = Path(model)
    if (folder / "config.json").is_file():
        config = json.loads((folder / "config.json").read_text())
        try:
            return ModelShape(
                config["hidden_size"],
                config["num_hidden_layers"],
                config["intermediate_size"],
                config["vocab_size"],
                config["num_attention_heads"],
                config.get("num_key_value_heads", config["num_attention_heads"]),
                tied=bool(config.get("tie_word_embeddings", False)),
            )
        except KeyError as err:
            raise ConfigError(
                f"{folder / 'config.json'} has no {err.args[0]}: give a decoder's config.json"
            ) from None
    return SHAPES.get(model.removesuffix("-Instruct"))


@dataclass(frozen=True)
class RunRow:
    package: Path
    rounds: int
    tasks: int
    workflow_bytes: int

    @property
    def budget_share(self) -> float:
        return self.workflow_bytes / WORKFLOW_BUDGET_BYTES


@dataclass(frozen=True)
class TransferRow:
    what: str
    before_bytes: int
    after_bytes: int


@dataclass(frozen=True)
class StageTime:
    part: str  # generation, teacher, log-probs, update
    stage: str
    gpus: int
    seconds: float


@dataclass(frozen=True)
class Plan:
    runs: tuple[RunRow, ...]
    stage_gpus: dict[str, int]
    model: str | None
    params: int | None
    transfers: tuple[TransferRow, ...]  # per round; empty without a known model
    round_time: tuple[StageTime, ...]  # empty without a known model or off the cluster profile
    stage_timeouts: dict[str, int | None]  # per attempt, from the profile

    def stages_near_timeout(self) -> list[str]:
        """Stages whose estimated time is over half their timeout: raise it in profiles.py."""
        spent: dict[str, float] = {}
        for t in self.round_time:
            spent[t.stage] = spent.get(t.stage, 0.0) + t.seconds
        return [
            stage
            for stage, seconds in spent.items()
            if self.stage_timeouts.get(stage) and seconds > self.stage_timeouts[stage] / 2
        ]

    @property
    def rounds(self) -> int:
        return sum(r.rounds for r in self.runs)

    @property
    def round_seconds(self) -> float:
        return sum(t.seconds for t in self.round_time)


def plan(packages: Sequence[tuple[str | Path, Any]], model: str | None = None) -> Plan:
    """The plan (module docstring) of the runs `packages`: (compiled YAML, its PipelineOptions)
    in run order; `model` is a hub id or a model folder (None: no bytes or times)."""
    from pipelines.profiles import PROFILES
    from sdar_core.algos import get_algorithm

    if not packages:
        raise ConfigError("plan needs at least one compiled package: compile one first")
    runs = []
    for path, options in packages:
        docs = load_package(path)
        runs.append(RunRow(Path(path), options.rounds, _count_tasks(docs[0]), _size(docs)))
    options = packages[0][1]
    algo = get_algorithm(options.algorithm)
    profile = PROFILES[options.profile]
    present = {"evaluate"} | ({"warmstart_sft"} if options.warm_start else set())
    if algo.trains:
        present |= {"generate_rollouts", "sdar_update"}
        present |= {"score_teacher"} if algo.needs_teacher else set()
    stage_gpus = {}
    for stage in (s for s in MODEL_STAGES if s in present):
        gpus = profile[stage].gpus
        stage_gpus[stage] = options.num_gpus if gpus == "num_gpus" else gpus
    shape = model_shape(model) if model else None
    params = shape.params if shape else None
    transfers: tuple[TransferRow, ...] = ()
    times: tuple[StageTime, ...] = ()
    if params and algo.trains:
        transfers = _transfers(params, readers=3 if algo.needs_teacher else 2)
        if options.profile == "cluster":
            work = _rollout_work(options) / MEASURED_WORK
            times = _round_time(params * work, stage_gpus, teacher=algo.needs_teacher)
    timeouts = {stage: profile[stage].timeout_s for stage in stage_gpus}
    return Plan(tuple(runs), stage_gpus, model, params, transfers, times, timeouts)


def _rollout_work(options: Any) -> int:
    """Episodes x max steps of a round, from the rollout config the pipeline compiles in."""
    from pipelines.options import stage_config_defaults
    from sdar_core.run.config import RunConfig

    fields = json.loads(stage_config_defaults(options)["rollout_config"])
    config = RunConfig.model_fields["rollout"].annotation.model_validate(fields)
    return config.n_tasks * config.group_size * config.max_steps


def _size(docs: list[dict]) -> int:
    return estimate_workflow_bytes(docs)


def _count_tasks(spec: dict) -> int:
    """Container and importer steps: every task whose component is not a DAG."""
    components = spec.get("components", {})

    def count(dag: dict) -> int:
        total = 0
        for task in dag.get("tasks", {}).values():
            component = components[task["componentRef"]["name"]]
            total += count(component["dag"]) if "dag" in component else 1
        return total

    return count(spec["root"]["dag"])


def _transfers(params: int, *, readers: int) -> tuple[TransferRow, ...]:
    """Bytes per round through artifact storage, before and after weights-only checkpoints."""
    weights = 2 * params  # bf16
    before = weights + 2 * params + 4 * params + 8 * params  # + DeepSpeed module, master, Adam
    after = weights  # + small JSON
    return (
        TransferRow(f"checkpoint downloads ({readers} stages)", readers * before, readers * after),
        TransferRow("checkpoint upload (update)", before, after),
        TransferRow(
            f"start-model downloads ({readers} stages)", readers * weights, readers * weights
        ),
    )


def _round_time(work: float, stage_gpus: dict[str, int], *, teacher: bool) -> tuple:
    """`work`: parameters x (episodes x max steps relative to the authors' run)."""
    scale = work / SHAPES[MEASURED_SHAPE].params
    times = []
    for part, seconds in MEASURED_SECONDS.items():
        if part == "teacher" and not teacher:
            continue
        stage = _STAGE_OF[part]
        gpus = stage_gpus[stage]
        times.append(StageTime(part, stage, gpus, seconds * scale * MEASURED_GPUS / gpus))
    return tuple(times)


def format_plan(p: Plan) -> str:
    """`p` as the lines `sdar compile` prints."""
    lines = [f"plan: {len(p.runs)} run(s), {p.rounds} round(s) in all"]
    budget_kib = WORKFLOW_BUDGET_BYTES // 1024
    for i, run in enumerate(p.runs, 1):
        over = "; OVER the budget: the cluster refuses it" if run.budget_share > 1 else ""
        lines.append(
            f"  run {i}: {run.package.name}: {run.rounds} round(s), {run.tasks} tasks, Argo "
            f"Workflow ~{run.workflow_bytes / 1024:,.0f} KiB ({run.budget_share:.0%} of the "
            f"{budget_kib:,} KiB budget; estimated{over})"
        )
    gpus = ", ".join(f"{stage} {n}" for stage, n in p.stage_gpus.items())
    lines.append(f"  GPUs per stage: {gpus}")
    if any(p.stage_timeouts.values()):
        given = {stage: s for stage, s in p.stage_timeouts.items() if s}
        timeouts = ", ".join(f"{stage} {s / 3600:g} h" for stage, s in given.items())
        lines.append(f"  timeout per attempt: {timeouts}")
    if p.params is None:
        lines.append(
            "  bytes per round and round time: unknown model (give a recipe or a model folder "
            f"with config.json; known hub ids: {', '.join(SHAPES)})"
        )
        return "\n".join(lines)
    lines.append(f"  model: {p.model}, {p.params / 1e9:.2f} B parameters")
    if p.transfers:
        before = sum(t.before_bytes for t in p.transfers)
        after = sum(t.after_bytes for t in p.transfers)
        lines.append(
            f"  artifact storage per round: {before / _GB:,.1f} GB with the trainer state in the "
            f"checkpoint, {after / _GB:,.1f} GB with weights only (computed from P)"
        )
        for t in p.transfers:
            lines.append(
                f"    {t.what}: {t.before_bytes / _GB:,.1f} GB -> {t.after_bytes / _GB:,.1f} GB"
            )
    if p.round_time:
        parts = ", ".join(f"{t.part} {t.seconds:,.0f} s on {t.gpus} GPU(s)" for t in p.round_time)
        total = p.round_seconds * p.rounds
        span = f"{total / 3600:,.1f} h" if total >= 3600 else f"{total / 60:,.0f} min"
        lines.append(
            f"  round time ~{p.round_seconds:,.0f} s ({parts}); {p.rounds} rounds ~{span}. "
            "ESTIMATED from the authors' 3B step on 4 A100s (ZJU-REAL/SDAR#51), scaled by "
            "parameters, episodes x steps and GPUs; compute only (no model loading or "
            "downloads); not measured"
        )
        for stage in p.stages_near_timeout():
            lines.append(
                f"  warning: {stage}'s estimated time is over half its timeout: raise its "
                "timeout_s in pipelines/profiles.py"
            )
    return "\n".join(lines)
