"""A stage's failure that no retry fixes ends its task at once, with one line saying why.

Every component runs its stage inside `stage_failures(component, round)`. An error that a retry
cannot fix is caught there: the task log gets its traceback and then one line,
"<component> round <r> failed: <message>"; the task exits with status `NO_RETRY_EXIT` (3); and
when the environment names a folder in `SDAR_STAGE_ERRORS` (the embedded run sets it), a JSON
record of that line is written there, which the embedded runner reads to stop retrying and end
the run with that line (pipelines/task_failures.py). Any other error propagates unchanged: the
task fails with status 1 and the pipeline's retry policy, where the stage has one, applies.

What no retry fixes:
- bad input: `SdarError` and its subclasses (a config, model, dataset, game or index that is
  wrong stays wrong), and pydantic's `ValidationError` - except a `RetrievalError` that is not a
  `RetrievalRejected`: that one means the retrieval server could not be reached or answered
  badly, which a later attempt may find fixed;
- a bug or a broken image: `ImportError`, `SyntaxError`, `NameError`, `TypeError`,
  `AttributeError`, raised by the same code on the same inputs on every attempt.
Flaky failures keep their retries: OSError (network, storage), RuntimeError (CUDA, NCCL),
MemoryError, a subprocess that failed (the DeepSpeed launcher's ranks), and a worker killed by
the OOM killer or a node's loss (no exception at all: the process dies).

On a KFP cluster the status alone cannot stop the retries (README "Retries"): the KFP backend
compiles a task's retry policy into an Argo `retryStrategy` with a limit and a back-off only, so
Argo retries every failed attempt whatever its exit status; the record is not written there.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ERRORS_ENV", "NO_RETRY_EXIT", "failure_line", "read_failures", "stage_failures"]

ERRORS_ENV = "SDAR_STAGE_ERRORS"
NO_RETRY_EXIT = 3
_BUGS = (ImportError, SyntaxError, NameError, TypeError, AttributeError)


def failure_line(err: BaseException) -> tuple[str, bool] | None:
    """(the error as one line, whether it is bad input) for an error no retry fixes, else None
    (module docstring)."""
    from pydantic import ValidationError

    from sdar_core.errors import SdarError, error_message
    from sdar_core.retrieval.client import RetrievalError, RetrievalRejected

    if isinstance(err, RetrievalError) and not isinstance(err, RetrievalRejected):
        return None
    if isinstance(err, SdarError | ValidationError):
        return error_message(err), True
    if isinstance(err, _BUGS):
        return f"{type(err).__name__}: {err} (a bug: the traceback is in the task log)", False
    return None


@contextlib.contextmanager
def stage_failures(component: str, round: int | None = None) -> Iterator[None]:
    """Run a component's stage; end the task with `NO_RETRY_EXIT` and one line on an error no
    retry fixes (module docstring)."""
    try:
        yield
    except Exception as err:
        found = failure_line(err)
        if found is None:
            raise
        text, bad_input = found
        where = component if round is None else f"{component} round {round}"
        line = f"{where} failed: {text}"
        traceback.print_exc()
        print(line, file=sys.stderr, flush=True)
        _record(line, bad_input)
        raise SystemExit(NO_RETRY_EXIT) from None


def _record(line: str, bad_input: bool) -> None:
    """Write the failure into the folder `SDAR_STAGE_ERRORS` names, if any (whole or not at
    all: a temporary file, then a rename)."""
    folder = os.environ.get(ERRORS_ENV)
    if not folder:
        return
    from sdar_core.outputs import write_text_atomic

    record = json.dumps({"message": line, "bad_input": bad_input})
    write_text_atomic(Path(folder) / f"{os.getpid()}.json", record)


def read_failures(folder: str | os.PathLike[str]) -> list[dict]:
    """The failures recorded in `folder`, oldest first."""
    paths = sorted(Path(folder).glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return [json.loads(p.read_text()) for p in paths]
