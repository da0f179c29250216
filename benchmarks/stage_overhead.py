"""Benchmark the embedded runner's overhead per task: what a pipeline task costs before its stage
starts working.

Under kfp.local every task is a fresh interpreter that imports kfp's executor, the component
body's `sdar_core.run.stages`, and whatever its stage function imports, and opens its tracking
store (`RunStore`: sqlite3 on a local store, an MlflowClient otherwise; a stage that logs
through `Tracking.stage` also freezes the garbage collector at exit). Part 1 times exactly that,
per stage, in fresh interpreters from start to exit (median of `--repeats`), and names the heavy
packages that were imported by then.
Part 2 (`--pipeline`) runs a small embedded pipeline (SDAR on ALFWorld, one round: tracking,
index, rollouts, teacher, update, two evaluations; tiny model, 2 games) twice, side by side: each
task in a fresh interpreter (`warm_tasks=False`, as kfp.local starts them) and forked from a warm
server (pipelines/warm_tasks.py, the default), and prints for each the pipeline's wall time and
the runner overhead per task as `sdar run` reports it: (pipeline wall time - time inside the
stages) / tasks.

Usage:  python benchmarks/stage_overhead.py [--repeats 3] [--pipeline]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_COMMON = "import kfp.dsl.executor_main\nfrom sdar_core.run.stages import Tracking\n"
# how a stage opens its tracking store, after its imports
_OPEN_STORE = "Tracking('sqlite:///{db}', 'run').stage('bench', 0)\n"
_OPEN_STORE_FIRST = "from sdar_core.tracking.store import run_store\nrun_store('sqlite:///{db}').experiment('bench')\n"
HEAVY = ("mlflow", "torch", "transformers", "datasets", "pandas", "pyarrow", "matplotlib", "numpy")
_REPORT = "import sys\nprint(' '.join(m for m in {heavy!r} if m in sys.modules))\n"
# what each stage function imports before its work starts (sdar_core/run/stages.py)
STAGE_IMPORTS = {
    "start_tracking": "from sdar_core.tracking import start_run\n",
    "index_skills": "from sdar_core.skills import IndexConfig, build_index, bundled_skills_dir\n"
    "from sdar_core.skills.index import read_manifest\n",
    "generate_rollouts": "from sdar_core.algos import get_algorithm\n"
    "from sdar_core.rollout import RolloutConfig, generate_rollouts\n"
    "from sdar_core.run.config import check_group_size\n",
    "score_teacher": "from sdar_core.teacher import TeacherConfig, score_teacher\n",
    "sdar_update": "from sdar_core.train import UpdateConfig, sdar_update\n",
    "evaluate": "from sdar_core.algos import get_algorithm\n"
    "from sdar_core.evaluation import EvalConfig, evaluate\n",
}


def time_imports(stage: str, db: Path, repeats: int) -> tuple[float, str]:
    """Median wall time of a fresh interpreter doing the stage's start-up, and the heavy
    packages it imported."""
    opening = _OPEN_STORE_FIRST if stage == "start_tracking" else _OPEN_STORE
    code = _COMMON + STAGE_IMPORTS[stage] + opening.format(db=db) + _REPORT.format(heavy=HEAVY)
    times, loaded = [], ""
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
        loaded = done.stdout.decode().strip()
    return statistics.median(times), loaded


def pipeline_overhead(out: Path, warm_tasks: bool) -> tuple[float, float, int]:
    """Wall time of the pipeline, runner overhead per task, tasks."""
    from pipelines.local import run_local
    from sdar_core.evaluation import EvalConfig
    from sdar_core.rollout import RolloutConfig
    from sdar_core.run import RunConfig

    config = RunConfig(
        out_dir=out,
        algorithm="sdar",
        rounds=1,
        n_train_games=2,
        n_valid_games=2,
        rollout=RolloutConfig(
            n_tasks=1, group_size=2, max_steps=2, max_new_tokens=8, show_progress=False
        ),
        eval=EvalConfig(max_steps=2, max_new_tokens=8, show_progress=False),
        warm_tasks=warm_tasks,
    )
    result = run_local(config)
    return result.pipeline_seconds, result.overhead_per_task, result.n_tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh interpreters per stage")
    parser.add_argument("--pipeline", action="store_true", help="also run a small pipeline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "mlflow.db"
        from sdar_core.tracking import prepare_experiment
        from sdar_core.tracking.store import sqlite_uri

        prepare_experiment(sqlite_uri(db), "bench")  # migrations happen here, not in the timing
        print("fresh-interpreter start-up per task (kfp executor + stage imports + tracking store)")
        for stage in STAGE_IMPORTS:
            seconds, loaded = time_imports(stage, db.resolve(), args.repeats)
            print(f"  {stage:18s} {seconds:5.2f} s   {loaded or '-'}")
        if args.pipeline:
            walls = {}
            for warm in (False, True):
                name = "warm tasks" if warm else "fresh tasks"
                wall, overhead, n_tasks = pipeline_overhead(Path(tmp) / name.split()[0], warm)
                walls[warm] = wall
                print(
                    f"embedded pipeline, {name}: {wall:.1f} s, {overhead:.2f} s runner overhead "
                    f"per task ({n_tasks} tasks)"
                )
            print(f"fresh / warm wall time: {walls[False] / walls[True]:.2f}x")


if __name__ == "__main__":
    main()
