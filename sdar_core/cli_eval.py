"""`sdar compare` and `sdar eval`: compare tracked runs, evaluate a checkpoint, as commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    env: Annotated[str, typer.Option(help="alfworld, webshop or search")] = "alfworld",
    split: Annotated[
        str | None,
        typer.Option(help="split [default: the env's evaluation split: valid_seen or test]"),
    ] = None,
    n_tasks: Annotated[
        int | None,
        typer.Option(help="n tasks taken round-robin across task types [default: all]"),
    ] = None,
    policy: Annotated[str, typer.Option(help="model, expert or random")] = "model",
    decoding: Annotated[str, typer.Option(help="greedy or sample")] = "greedy",
    k: Annotated[int, typer.Option(help="runs with different seeds (avg@k)")] = 1,
    temperature: Annotated[float, typer.Option(help="sampling temperature")] = 1.0,
    max_new_tokens: Annotated[int, typer.Option(help="response token limit per turn")] = 512,
    max_steps: Annotated[int, typer.Option(help="agent turns per episode")] = 50,
    batch_size: Annotated[int, typer.Option(help="episodes played side by side")] = 16,
    seed: Annotated[int, typer.Option(help="seed of run 0")] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
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
            "[default: yes when --skills-index is given, else no]",
        ),
    ] = None,
    skills_k: Annotated[int, typer.Option(help="task-specific skills retrieved per task")] = 1,
    max_prompt_tokens: Annotated[
        int, typer.Option(help="budget of prompt + skills; skills that do not fit are dropped")
    ] = 4096,
    keep_texts: Annotated[
        bool, typer.Option(help="keep each turn's model text in the results JSON")
    ] = True,
    workers: Annotated[
        str,
        typer.Option(
            help="worker processes, one per GPU, each with its own model: a count, or auto "
            "(every visible GPU with --device cuda, 1 on cpu)"
        ),
    ] = "auto",
) -> None:
    """Evaluate a checkpoint deterministically on a fixed validation set; print the metrics.
    Scripted policies (expert, random) need no --model and ignore skills."""
    from sdar_core.evaluation import EvalConfig, evaluate
    from sdar_core.run.config import env_data

    if policy == "model" and model is None:
        raise typer.BadParameter("--policy model needs --model: pass a checkpoint folder")
    shipped = env_data(env).shipped_dir
    if data is None and shipped is None:
        raise typer.BadParameter(f"--env {env} has no shipped data: pass --data FOLDER")
    config = EvalConfig(
        env=env,
        split=env_data(env).eval_split if split is None else split,
        n_tasks=n_tasks,
        policy=policy,
        decoding=decoding,
        k=k,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        max_steps=max_steps,
        batch_size=batch_size,
        seed=seed,
        device=device,
        student_sees_skills=(
            skills_index is not None if student_sees_skills is None else student_sees_skills
        ),
        skills_k=skills_k,
        max_prompt_tokens=max_prompt_tokens,
        keep_texts=keep_texts,
        workers=int(workers) if workers.isdigit() else workers,
    )
    results = evaluate(
        None if policy != "model" else model,
        data if data is not None else shipped(),
        out_path,
        config,
        skills_index_dir=skills_index,
    )
    for name, value in results["metrics"].items():
        typer.echo(f"{name}: {value:.4f}")
