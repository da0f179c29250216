"""Verified resume for the embedded run (pipelines/local.py): what kfp.local's task cache reuses
is first checked against the checksum records written when it was produced, and what killed
attempts left behind is removed.

kfp.local reuses a cached task when the files its outputs name still exist; it does not look
inside them. Within `verified_cache(labels)`, kfp.local's cache is a `LocalCache` whose lookup
also checks every output of a hit (`sdar_core.run.verify.output_damage`): a damaged output is
not reused; its cache entry and task folder are removed, the run prints one line
(`[sdar] round 1: rollouts: cached trajectories damaged (data.parquet: sha256 mismatch),
running it again`), and the task runs again, as do the tasks after it (their inputs moved).
The hook replaces `kfp.local.cache.get_local_cache`, which kfp.local's task executor calls for
every task, while the pipeline runs, and restores it afterwards.

`remove_unfinished(pipeline_root)` removes the task folders of attempts that never finished
(a task killed or failed before its executor wrote `executor_output.json`): kfp.local never
reuses them, and each holds the outputs it had half written. It assumes no other run is using
the same pipeline root at the time.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from kfp import dsl
from kfp.local import cache as kfp_cache

from sdar_core.run.verify import output_damage
from sdar_core.tracking.console import MARK

__all__ = ["remove_unfinished", "task_labels", "verified_cache"]

EXECUTOR_OUTPUT = "executor_output.json"  # written by a task's executor once it has finished
Notify = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


def task_labels(pipeline: Any) -> dict[str, str]:
    """Task folder name (kfp.local's: the component name without "comp-") -> the task's display
    name ("round 1: rollouts"), from a compiled pipeline."""
    spec = pipeline.pipeline_spec
    dags = [spec.root.dag, *(c.dag for c in spec.components.values() if c.HasField("dag"))]
    return {
        task.component_ref.name.removeprefix("comp-"): task.task_info.name or name
        for dag in dags
        for name, task in dag.tasks.items()
    }


class VerifiedCache(kfp_cache.LocalCache):
    """kfp.local's cache, whose hits are reused only when every output matches its record."""

    def __init__(self, cache_root: str, labels: Mapping[str, str], notify: Notify) -> None:
        super().__init__(cache_root)
        self.labels, self.notify = labels, notify

    def get(self, key: str) -> dict[str, Any] | None:
        outputs = super().get(key)
        for name, artifact in _artifacts(outputs or {}):
            damage = output_damage(
                artifact.uri, kind=type(artifact).schema_title, metadata=artifact.metadata
            )
            if damage is not None:
                task_dir = Path(artifact.uri).parent
                label = self.labels.get(task_dir.name, task_dir.name)
                self.notify(f"{MARK}{label}: cached {name} damaged ({damage}), running it again")
                self._evict(key, task_dir)
                return None
        return outputs

    def _evict(self, key: str, task_dir: Path) -> None:
        """Forget the entry; remove the task's folder when it lies in this pipeline root."""
        with self._lock:
            (Path(self.cache_root) / f"{key}.json").unlink(missing_ok=True)
        root = Path(self.cache_root).resolve().parent
        if task_dir.resolve().parent.parent == root:
            shutil.rmtree(task_dir, ignore_errors=True)


def _artifacts(outputs: Mapping[str, Any]) -> Iterator[tuple[str, dsl.Artifact]]:
    """(output name, artifact) for every local artifact among a task's outputs."""
    for name, value in outputs.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dsl.Artifact) and item.uri and "://" not in item.uri:
                yield name, item


@contextlib.contextmanager
def verified_cache(labels: Mapping[str, str], notify: Notify = _print) -> Iterator[None]:
    """While inside, kfp.local's cache (when caching is on) is a `VerifiedCache`; `labels` name
    the tasks in the notices (`task_labels`)."""
    original = kfp_cache.get_local_cache
    lock = threading.Lock()
    made: dict[str, VerifiedCache] = {}

    def get_local_cache() -> VerifiedCache | None:
        found = original()
        if found is None:
            return None
        with lock:  # kfp.local may run independent tasks in threads
            if found.cache_root not in made:
                made[found.cache_root] = VerifiedCache(found.cache_root, labels, notify)
            return made[found.cache_root]

    kfp_cache.get_local_cache = get_local_cache
    try:
        yield
    finally:
        kfp_cache.get_local_cache = original


def remove_unfinished(pipeline_root: str | Path, notify: Notify = _print) -> list[Path]:
    """Remove the task folders under `pipeline_root` whose task never finished (module
    docstring), and run folders left empty; say so in one line; return the removed folders."""
    root = Path(pipeline_root)
    if not root.is_dir():
        return []
    runs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    removed, size = [], 0
    for run in runs:
        for task in sorted(p for p in run.iterdir() if p.is_dir()):
            if not (task / EXECUTOR_OUTPUT).is_file():
                size += sum(f.stat().st_size for f in task.rglob("*") if f.is_file())
                shutil.rmtree(task)
                removed.append(task)
        if not any(run.iterdir()):
            run.rmdir()
    for leftover in (root / ".kfp_cache").glob(".kfp_cache_*.tmp"):  # an entry half written
        leftover.unlink()
    if removed:
        names = ", ".join(p.name for p in removed)
        notify(
            f"{MARK}removed {len(removed)} task folder(s) that killed or failed attempts left "
            f"half written ({size / 1e6:.1f} MB; never reused): {names}"
        )
    return removed
