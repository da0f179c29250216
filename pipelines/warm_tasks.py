"""Warm task processes for the embedded run.

kfp.local's subprocess runner starts a fresh `python -m kfp.dsl.executor_main` for every task,
and each one spends seconds importing torch, transformers and datasets before its stage
starts: about a quarter of a miniature run's wall time on 2 cores. Inside `warm_tasks(...)`, a
server process imports those once and forks one child per task instead. The child does what
kfp.local's command does: the component's source goes to a fresh temp folder as
`ephemeral_component.py`, `kfp.dsl.executor_main` runs as `__main__` with the task's arguments,
environment (`_KFP_RUNTIME=true` included) and working directory, and the child exits through
the interpreter's normal shutdown (atexit handlers, buffered output). Its stdout and stderr go
to a pipe whose lines the runner prints, as kfp.local's `run_local_subprocess` does, and the
exit status comes back over the server's socket.

What the child must not inherit: the server only imports (no torch op ran, so no OpenMP pool
exists to break across fork), and the child re-seeds Python's and NumPy's global generators
from the OS, as a fresh process would have. A command that is not kfp's lightweight-component
command (another kfp version, another component kind) runs as kfp.local would run it; so does
every task when the server cannot be reached (it died, or failed to start: its output is in the
run's log).

Tasks run one at a time (the embedded pipeline has no ParallelFor; concurrent callers queue on
the server's socket). `RunConfig.warm_tasks = False` turns this off. A process that runs several
pipelines one after another can keep one server for all of them (`shared_warm_server`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

__all__ = ["IMPORTS", "run_task", "shared_warm_server", "task_source", "warm_server", "warm_tasks"]

# what the stages import (benchmarks/stage_overhead.py); on a local store they do not import
# mlflow (sdar_core/tracking), a child that needs it imports it itself
IMPORTS = (
    "torch",
    "transformers",
    "datasets",
    "deepspeed",  # an update's save_pretrained imports it through accelerate (~2-3 s a task)
    "kfp.dsl.executor",  # not executor_main itself: the child runs it as __main__
    "sdar_core.run.stages",
    "sdar_core.envs.alfworld.env",  # TextWorld and ALFWorld's engine (~1.5 s a task otherwise)
    "sdar_core.models.templates",
    "sdar_core.rollout",
    "sdar_core.teacher",
    "sdar_core.train",
    "sdar_core.evaluation",
    "sdar_core.run.report",
)
_EXECUTOR = "kfp.dsl.executor_main"
# kfp 2.x's command for a lightweight component (kfp.dsl.component_factory), after kfp.local
# replaced `python3` with this interpreter: `sh -ec SCRIPT SOURCE ARGS...` (compared word by word)
_SCRIPT = f"""\
program_path=$(mktemp -d)

printf "%s" "$0" > "$program_path/ephemeral_component.py"
_KFP_RUNTIME=true {{python}} -m {_EXECUTOR} \
    --component_module_path \
    "$program_path/ephemeral_component.py" \
    "$@"
"""
_HEADER = struct.Struct("!Q")  # length of the JSON request that follows
_STATUS = struct.Struct("!i")  # the child's exit code (negative: killed by that signal)


def task_source(full_command: list[str]) -> tuple[str, list[str]] | None:
    """The component source and executor arguments of kfp's lightweight-component command, or
    None when `full_command` is anything else."""
    if len(full_command) < 3 or full_command[:2] != ["sh", "-ec"]:
        return None
    if full_command[2].split() != _SCRIPT.format(python=sys.executable).split():
        return None  # (kfp's own text has a continuation line's indentation inside)
    return full_command[3], full_command[4:]


@contextlib.contextmanager
def warm_server(log_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A warm server (module docstring) listening at the address it yields with the process;
    its own output goes to `log_path`. It stops when the block ends."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    folder = tempfile.mkdtemp(prefix="sdar-warm-tasks-")
    address = os.path.join(folder, "socket")
    listener.bind(address)
    listener.listen()
    with open(log_path, "ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "pipelines.warm_tasks", str(listener.fileno())],
            pass_fds=[listener.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    listener.close()  # the server holds it now: a dead server refuses connections
    try:
        yield address, server
    finally:
        server.terminate()
        server.wait()
        with contextlib.suppress(OSError):
            os.unlink(address)
            os.rmdir(folder)


_shared: tuple[str, subprocess.Popen, Path] | None = None  # shared_warm_server's, while open


@contextlib.contextmanager
def shared_warm_server(log_path: Path) -> Iterator[subprocess.Popen]:
    """Within the block, every `warm_tasks` of this process uses the one server started here
    (its output goes to `log_path`) instead of starting its own: a process that runs several
    pipelines one after another (pipelines/run_worker.py) imports the stages' libraries once.
    Each task is still a child forked from the import-only server, as with a server per run."""
    global _shared
    if _shared is not None:
        raise RuntimeError("a shared warm server is already running in this process")
    with warm_server(log_path) as (address, server):
        _shared = (address, server, log_path)
        try:
            yield server
        finally:
            _shared = None


@contextlib.contextmanager
def warm_tasks(log_path: Path) -> Iterator[subprocess.Popen]:
    """Within the block, kfp.local's subprocess runner hands its tasks to a warm server (module
    docstring), the process it yields: the shared one when `shared_warm_server` is open, else
    one started here, whose own output goes to `log_path` and which stops when the block ends."""
    from kfp.local import subprocess_task_handler

    if _shared is not None:
        address, server, server_log = _shared
        serving = contextlib.nullcontext((address, server))
    else:
        server_log, serving = log_path, warm_server(log_path)
    with serving as (address, server):
        original = subprocess_task_handler.run_local_subprocess

        def run_warm(full_command: list[str], env_vars: dict[str, str] | None = None) -> int:
            task = task_source(full_command)
            if task is None:
                return original(full_command=full_command, env_vars=env_vars)
            try:
                return run_task(address, *task, env={**os.environ, **(env_vars or {})})
            except ConnectionRefusedError:
                warnings.warn(
                    f"the warm task server is not running (its output: {server_log}); "
                    "this task runs in a fresh process",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return original(full_command=full_command, env_vars=env_vars)

        subprocess_task_handler.run_local_subprocess = run_warm
        try:
            yield server
        finally:
            subprocess_task_handler.run_local_subprocess = original


def run_task(address: str, source: str, args: list[str], *, env: dict[str, str]) -> int:
    """Run one task on the server at `address`; print its output lines as they come; return its
    exit code. Raises ConnectionRefusedError when no server listens (nothing ran)."""
    request = json.dumps({"source": source, "args": args, "env": env, "cwd": os.getcwd()}).encode()
    read_end, write_end = os.pipe()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(address)
            socket.send_fds(conn, [_HEADER.pack(len(request))], [write_end])
        finally:
            os.close(write_end)  # the child holds the only write end: EOF when it exits
        conn.sendall(request)
        with open(read_end, encoding="utf-8", errors="replace") as output:
            for line in output:
                print(line, end="")
        print("\n")  # as kfp.local separates a task's output
        status = _recv_exactly(conn, _STATUS.size)
    if len(status) < _STATUS.size:
        print("the warm task server stopped before the task's end", file=sys.stderr)
        return 1
    return _STATUS.unpack(status)[0]


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _serve(listener: socket.socket) -> tuple[dict, int]:
    """Accept tasks one at a time; fork a child for each and send its exit code back. Returns
    only in a child: its request and output fd."""
    while True:
        conn, _ = listener.accept()
        with conn:
            header, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 1)
            if len(header) < _HEADER.size or len(fds) != 1:
                continue  # a client that went away before its request
            request = json.loads(_recv_exactly(conn, _HEADER.unpack(header)[0]))
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                return request, fds[0]
            os.close(fds[0])
            _, status = os.waitpid(pid, 0)
            with contextlib.suppress(OSError):
                conn.sendall(_STATUS.pack(os.waitstatus_to_exitcode(status)))


def _child(request: dict, output_fd: int) -> None:
    """Become the task's process: its output, environment, working folder, fresh global random
    generators, Ctrl-C as usual; then run kfp's executor on the component source."""
    import random

    import numpy as np

    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(output_fd)
    sys.stdout.reconfigure(line_buffering=True)  # the runner prints it line by line
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ["_KFP_RUNTIME"] = "true"
    os.chdir(request["cwd"])
    random.seed()
    np.random.seed()
    program = Path(tempfile.mkdtemp()) / "ephemeral_component.py"
    program.write_text(request["source"])
    sys.argv = [_EXECUTOR, "--component_module_path", str(program), *request["args"]]
    import runpy

    runpy.run_module(_EXECUTOR, run_name="__main__", alter_sys=True)


def main(listener_fd: int) -> None:
    """The server: import the stages' libraries once, then serve (module docstring)."""
    import importlib

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the task, not the server
    for name in IMPORTS:
        importlib.import_module(name)
    listener = socket.socket(fileno=listener_fd)
    request, output_fd = _serve(listener)
    _child(request, output_fd)  # in the child only; exits through normal interpreter shutdown


if __name__ == "__main__":
    main(int(sys.argv[1]))
