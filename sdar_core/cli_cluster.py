"""`sdar compile` and `sdar submit`: the pipeline for a Kubeflow cluster, as commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sdar_core.cli_common import ceiling_option, eval_every_option, pipelines

__all__ = ["compile_", "submit"]

# the evaluation options shared with the other commands (cli_common), with this command's defaults
EvalEvery = eval_every_option("start and final only")
Ceiling = ceiling_option("no")


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
    rounds_per_run: Annotated[
        int | None,
        typer.Option(
            help="compile the rounds as a chain of pipelines of at most K rounds: OUT-1ofN.yaml "
            "... and OUT.chain.json for sdar submit [default: the recipe's rounds_per_run, else "
            "the largest K whose Argo Workflows fit the budget, where the estimator is installed]"
        ),
    ] = None,
    warm_start: Annotated[
        bool | None,
        typer.Option(
            "--warm-start/--no-warm-start", help="add the supervised warm-start stage [default: no]"
        ),
    ] = None,
    eval_every: EvalEvery = None,
    ceiling: Ceiling = None,
    profile: Annotated[
        str | None,
        typer.Option(help="cluster (GPU requests) or local (CPU, kind) [default: cluster]"),
    ] = None,
    num_gpus: Annotated[
        int | None, typer.Option(help="GPUs of the update / warm-start pod [default: 1]")
    ] = None,
    pvc_name: Annotated[
        str | None,
        typer.Option(
            help="PVC to mount at /data on the update tasks (trainer state_dir) [default: none]"
        ),
    ] = None,
    mlflow_secret: Annotated[
        str | None,
        typer.Option(
            help="Kubernetes secret NAME (keys username, password) whose MLflow credentials "
            "every task reads; it must exist [default: none, an MLflow server without auth]"
        ),
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
    """Compile the SDAR pipeline for one algorithm, environment and R to a KFP YAML file (a
    long run: a chain of them, pipelines/chain.py), then print its plan: runs, tasks and
    estimated Argo Workflow size, GPUs per stage, bytes through artifact storage per round and
    an estimated round time (pipelines/plan.py)."""
    package_module = pipelines()
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
        "eval_every": eval_every,
        "ceiling": ceiling,
        "profile": profile,
        "num_gpus": num_gpus,
        "pvc_name": pvc_name,
        "mlflow_secret": mlflow_secret,
        "model_uri": model,
        "games_uri": data,
        "gpu_node_selector": selector,
        "gpu_toleration": gpu_toleration,
    }
    plan_model = model  # a model folder here gives the plan its parameter count
    if recipe is not None:
        recipe_module = pipelines("pipelines.recipe")
        options = recipe_module.recipe_options(recipe, **flags)
        plan_model = recipe_module.load_recipe(recipe).model
        if rounds_per_run is None:
            rounds_per_run = recipe_module.load_recipe(recipe).rounds_per_run
    else:
        given = {name: value for name, value in flags.items() if value is not None}
        options = package_module.PipelineOptions(**given)
    chain = pipelines("pipelines.chain")
    written = chain.compile_chain(options, out, rounds_per_run=rounds_per_run)
    for path in written:
        typer.echo(path)
    runs = chain.compiled_runs(options, written)
    plan = pipelines("pipelines.plan")
    typer.echo(plan.format_plan(plan.plan(runs, model=plan_model)))
    from components.images import unpublished_registry_warning

    warning = unpublished_registry_warning()
    if warning is not None:
        typer.echo(warning, err=True)


def submit(
    package: Annotated[
        Path,
        typer.Argument(
            help="compiled pipeline YAML, or a chain's OUT.chain.json (sdar compile): its runs "
            "are submitted one after another, each from the previous one's final checkpoint"
        ),
    ],
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
    chain_state: Annotated[
        Path | None,
        typer.Option(
            help="a chain's state file: submitting again with it picks the chain up where it "
            "stopped [default: ./<chain>.<run name>.state.json]"
        ),
    ] = None,
    run_timeout: Annotated[
        int, typer.Option(help="a chain's wait for each of its runs, in seconds")
    ] = 7 * 24 * 3600,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="run every task again, even where a cached result matches [default: caching on, "
            "a re-submission resumes after the last finished stage]",
        ),
    ] = False,
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
    notes = _object_store_notes(arguments.get("model_uri"), arguments.get("games_uri"))
    first = package
    if package.name.endswith(".chain.json") and package.is_file():  # the chain's first run
        first = pipelines("pipelines.chain").read_manifest(package)["chunks"][0]["package"]
    for note in notes + _secret_notes(first):
        typer.echo(note, err=True)
    if package.name.endswith(".chain.json"):
        _submit_chain(
            package,
            host,
            arguments,
            run_name,
            experiment,
            namespace,
            token,
            chain_state,
            run_timeout,
            not no_cache,
        )
        return
    run_id = pipelines("pipelines.submit").submit_pipeline(
        package,
        host=host,
        arguments=arguments,
        run_name=run_name,
        experiment=experiment,
        namespace=namespace,
        token=token,
        enable_caching=not no_cache,
    )
    typer.echo(f"KFP run id: {run_id}")


def _submit_chain(
    manifest: Path, host, arguments, run_name, experiment, namespace, token, state, timeout, cache
) -> None:
    """Submit (or pick up) the chain of `manifest` (pipelines/chain_submit.py)."""
    chain = pipelines("pipelines.chain_submit")
    client = pipelines("pipelines.submit").make_client(host=host, namespace=namespace, token=token)
    try:
        chain.submit_chain(
            manifest, client, arguments=arguments, run_name=run_name, experiment=experiment,
            state_path=state, timeout_s=timeout, enable_caching=cache, echo=typer.echo,
        )  # fmt: skip
    except chain.ChainFailed as failed:
        typer.echo(f"error: {failed}", err=True)
        raise typer.Exit(1) from None


# KFP's launcher reads s3:// and gs:// imports with the credentials the `kfp-launcher` ConfigMap
# of the run's namespace names (its `providers` setting); without it the importer's download fails.
_STORE_NAMES = {"s3://": "S3", "gs://": "GCS"}


def _object_store_notes(*uris: str | None) -> list[str]:
    """One note per object store that `uris` import from: what the backend needs to read them."""
    notes = []
    for prefix, store in _STORE_NAMES.items():
        if any(uri and uri.startswith(prefix) for uri in uris):
            notes.append(
                f"note: the pipeline imports {prefix} URIs: the kfp-launcher ConfigMap of the "
                f"run's namespace must name {store} credentials for them in its `providers` "
                "setting (README: Object-store imports), or the import task fails"
            )
    return notes


def _secret_notes(package: Path) -> list[str]:
    """A note naming the Kubernetes secrets the compiled `package` reads (`--mlflow-secret`):
    on KFP backends before 2.15 a missing one holds every pod in CreateContainerConfigError."""
    import yaml

    if not package.is_file():
        return []
    docs = list(yaml.load_all(package.read_text(), Loader=yaml.CSafeLoader))
    executors = (
        docs[1].get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {})
        if len(docs) > 1
        else {}
    ).get("executors", {})
    names = sorted(
        {s["secretName"] for ex in executors.values() for s in ex.get("secretAsEnv", [])}
    )
    return [
        f"note: the pipeline's tasks read the secret {name!r}: it must exist in the run's "
        "namespace, or every pod waits in CreateContainerConfigError"
        for name in names
    ]
