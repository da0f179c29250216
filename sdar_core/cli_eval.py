"""`sdar compare` and `sdar eval`: compare tracked runs, evaluate a checkpoint, as commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sdar_core.cli_common import print_rows

__all__ = ["compare", "eval_"]


def compare(
    run_ids: Annotated[list[str] | None, typer.Argument(help="MLflow run ids")] = None,
    experiment: Annotated[str | None, typer.Option(help="compare every run in it")] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow URI [default: sqlite:///$PWD/runs/embedded/mlflow.db]"),
    ] = None,
    out_dir: Annotated[Path, typer.Option(help="where the table and plots go")] = Path(
        "runs/comparison"
    ),
    log_to: Annotated[
        str | None,
        typer.Option(
            help="experiment of the comparison run [default: EXPERIMENT, or the first run's]"
        ),
    ] = None,
    include_unfinished: Annotated[
        bool, typer.Option(help="also compare runs that did not finish (killed, failed, running)")
    ] = False,
) -> None:
    """Compare runs: a table and plots (success per round, gate statistics), seeds of one
    algorithm as mean ± 95% interval, logged back to MLflow as a comparison run."""
    from sdar_core.tracking import compare_runs
    from sdar_core.tracking.compare import COLUMNS
    from sdar_core.tracking.store import existing_store_uri

    tracking_uri = existing_store_uri(tracking_uri or "runs/embedded/mlflow.db")

    result = compare_runs(
        tracking_uri,
        out_dir,
        run_ids=run_ids or (),
        experiment=experiment,
        log_to=log_to,
        include_unfinished=include_unfinished,
    )
    if result.left_out:
        typer.echo(
            f"left out {len(result.left_out)} unfinished run(s): {', '.join(result.left_out)} "
            "(--include-unfinished compares them too)"
        )
    for line in result.duplicates:
        typer.echo(line)
    print_rows("comparison", result.rows, [c for c in COLUMNS if c != "runs"])
    for path in result.files:
        typer.echo(path)
    if result.run_id is not None:
        typer.echo(f"logged to MLflow run {result.run_id}")


def eval_(
    out_path: Annotated[Path, typer.Argument(help="results JSON to write")],
    model: Annotated[
        str | None,
        typer.Option(
            help="checkpoint folder or hub id (sdar import-model makes one); needed with "
            "--policy model [default: none]"
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "--games",
            help="the env's data folder (ALFWorld: sdar gen-games) [default: the shipped data "
            "for webshop and search; ALFWorld needs one]",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="the evaluation settings: an EvalConfig JSON, or a pipeline run's evaluation "
            "JSON (its eval/start.json or eval/final.json artifact: its `config`), to get the "
            "pipeline's number; the flags below override it [default: none]"
        ),
    ] = None,
    env: Annotated[str | None, typer.Option(help="alfworld, webshop or search")] = None,
    split: Annotated[
        str | None,
        typer.Option(help="split [default: the env's evaluation split: valid_seen or test]"),
    ] = None,
    n_tasks: Annotated[
        int | None,
        typer.Option(help="n tasks taken round-robin across task types [default: all]"),
    ] = None,
    policy: Annotated[str | None, typer.Option(help="model, expert or random")] = None,
    decoding: Annotated[str | None, typer.Option(help="greedy or sample")] = None,
    k: Annotated[int | None, typer.Option(help="runs with different seeds (avg@k)")] = None,
    temperature: Annotated[float | None, typer.Option(help="sampling temperature")] = None,
    top_p: Annotated[float | None, typer.Option(help="nucleus sampling share")] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(help="response token limit per turn [default: 512]")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="agent turns per episode [default: 50]")
    ] = None,
    history_length: Annotated[
        int | None,
        typer.Option(
            help="past steps shown in the prompt (the miniature evaluates with 1) [default: 2]"
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="episodes played side by side [default: 16]")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="seed of run 0 [default: 0]")] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda [default: cpu]")] = None,
    dtype: Annotated[str | None, typer.Option(help="float32, bfloat16, ...")] = None,
    skills_index: Annotated[
        Path | None,
        typer.Option(
            help="skill index folder (sdar index-skills): its skills go into the model's prompt "
            "(Skill-Prompt, Skill-GRPO checkpoints) [default: none]"
        ),
    ] = None,
    student_sees_skills: Annotated[
        bool | None,
        typer.Option(
            "--student-sees-skills/--no-student-sees-skills",
            help="skills in the model's prompt; --student-sees-skills needs --skills-index "
            "[default: the config's, else yes when --skills-index is given]",
        ),
    ] = None,
    skills_k: Annotated[
        int | None, typer.Option(help="task-specific skills retrieved per task [default: 1]")
    ] = None,
    max_prompt_tokens: Annotated[
        int | None,
        typer.Option(help="budget of prompt + skills; skills that do not fit are dropped"),
    ] = None,
    keep_texts: Annotated[
        bool | None,
        typer.Option(
            "--keep-texts/--no-keep-texts",
            help="keep each turn's model text in the results JSON [default: yes]",
        ),
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option(
            help="worker processes, one per GPU, each with its own model: a count, or auto "
            "(every visible GPU with --device cuda, 1 on cpu) [default: auto]"
        ),
    ] = None,
) -> None:
    """Evaluate a checkpoint deterministically on a fixed validation set; print the metrics.
    Every EvalConfig field has a flag; `--config` takes a pipeline run's settings whole.
    Scripted policies (expert, random) need no --model and ignore skills."""
    from sdar_core.evaluation import evaluate
    from sdar_core.run.config import env_data

    flags = {
        "env": env, "split": split, "n_tasks": n_tasks, "policy": policy,
        "decoding": decoding, "k": k, "temperature": temperature, "top_p": top_p,
        "max_new_tokens": max_new_tokens, "max_steps": max_steps,
        "history_length": history_length, "batch_size": batch_size, "seed": seed,
        "device": device, "dtype": dtype, "student_sees_skills": student_sees_skills,
        "skills_k": skills_k, "max_prompt_tokens": max_prompt_tokens, "keep_texts": keep_texts,
        "workers": int(workers) if workers and workers.isdigit() else workers,
    }  # fmt: skip
    settings = eval_settings(config, flags, skills_index=skills_index)
    if settings.policy == "model" and model is None:
        raise typer.BadParameter("--policy model needs --model: pass a checkpoint folder")
    shipped = env_data(settings.env).shipped_dir
    if data is None and shipped is None:
        raise typer.BadParameter(f"--env {settings.env} has no shipped data: pass --data FOLDER")
    results = evaluate(
        None if settings.policy != "model" else model,
        data if data is not None else shipped(),
        out_path,
        settings,
        skills_index_dir=skills_index,
    )
    for name, value in results["metrics"].items():
        typer.echo(f"{name}: {value:.4f}")


def eval_settings(config: Path | None, flags: dict[str, Any], *, skills_index: Path | None) -> Any:
    """The EvalConfig of `sdar eval`: the config file's fields (an EvalConfig JSON, or an
    evaluation results JSON's `config`), then the flags given; the env's evaluation split
    unless either names one; skills in the prompt when an index is given, unless either says."""
    from pydantic import ValidationError

    from sdar_core.errors import ConfigError
    from sdar_core.evaluation import EvalConfig
    from sdar_core.run.config import env_data, read_json_object

    fields: dict[str, Any] = {}
    if config is not None:
        fields = read_json_object(
            config, what="evaluation config", write="an EvalConfig JSON object or an "
            "evaluation results JSON", example='{"history_length": 1, "max_steps": 7}',
        )  # fmt: skip
        if isinstance(fields.get("config"), dict) and "metrics" in fields:
            fields = fields["config"]  # a results JSON: the settings it was evaluated with
    fields |= {name: value for name, value in flags.items() if value is not None}
    fields.setdefault("env", "alfworld")
    fields.setdefault("split", env_data(fields["env"]).eval_split)
    fields.setdefault("student_sees_skills", skills_index is not None)
    try:
        return EvalConfig.model_validate(fields)
    except ValidationError as err:
        raise ConfigError(f"invalid evaluation settings: {err}") from None
