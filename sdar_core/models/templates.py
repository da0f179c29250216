"""Check a chat template before it is trusted: render it once, in transformers' sandbox, with a
bound on time and memory.

A chat template is Jinja code that comes with a model folder (or `sdar import-model
--chat-template FILE`). transformers renders it in jinja2's ImmutableSandboxedEnvironment, which
stops a template reaching Python internals (a `SecurityError`) but not one that loops 99,999 x
99,999 times or builds a 10 GB string: such a template would hang or kill a rollout or an
evaluation. `check_chat_template` renders the conversations the pipeline renders (a system and a
user message with the assistant turn opened; a user-assistant-user chat; a closed assistant turn)
with transformers' own renderer in a child process that gets `RENDER_LIMIT_S` seconds of
rendering (its imports are not counted) and `MEMORY_LIMIT_BYTES` more address space than it has
after its imports; a template that escapes, hangs, bloats or fails is refused with one line
naming where it came from and what is wrong.

The template bundled with sdar (the tiny model's ChatML) is known good and skipped, as is one
already checked in this process, so the embedded run pays nothing and a stage that loads its
tokenizer twice pays once. Starting the child costs ~1 s (the renderer's imports, no torch).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping

from sdar_core.errors import ArtifactError

__all__ = [
    "MEMORY_LIMIT_BYTES",
    "RENDER_LIMIT_S",
    "check_chat_template",
    "check_tokenizer_template",
]

RENDER_LIMIT_S = 1.0  # real templates render these samples in milliseconds
MEMORY_LIMIT_BYTES = 1 << 30
_IMPORT_LIMIT_S = 120.0  # the renderer's imports on a busy machine
_CHECKED: set[str] = set()  # digests of templates that passed in this process

# the shapes of conversation the pipeline renders (rollout/tokens.py, teacher/inputs.py)
SAMPLES = [
    (
        [{"role": "system", "content": "You are an agent."}, {"role": "user", "content": "Go."}],
        True,
    ),
    (
        [
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": "v"},
        ],
        True,
    ),
    ([{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}], False),
]

# runs in the child: imports, says "ready", then renders under the memory limit and prints one
# JSON line {"ok": true} or {"kind": ..., "message": ...}
_CHILD = """
import json, sys
from transformers.utils.chat_template_utils import render_jinja_template
request = json.loads(sys.stdin.read())
try:
    import resource
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + request["memory"], used + request["memory"]))
except (ImportError, OSError, ValueError):
    pass  # no such limit here: the time limit still holds
print("ready", flush=True)
try:
    for messages, opened in request["samples"]:
        render_jinja_template(
            [messages], chat_template=request["template"], add_generation_prompt=opened,
            **request["special_tokens"],
        )
    result = {"ok": True}
except MemoryError:
    result = {"kind": "memory", "message": ""}
except Exception as err:
    line = getattr(err, "lineno", None)
    result = {"kind": type(err).__name__, "message": str(err).splitlines()[0] if str(err) else "",
              "line": line}
print(json.dumps(result), flush=True)
"""


def _bundled(template: str) -> bool:
    from sdar_core.models.tokenizer import chatml_template

    return template == chatml_template()


def _render_in_child(template: str, special_tokens: Mapping[str, str]) -> dict:
    """The child's verdict ({"ok": True} or {"kind", "message"}); {"kind": "timeout"} when it
    rendered for longer than RENDER_LIMIT_S."""
    request = {
        "template": template,
        "special_tokens": dict(special_tokens),
        "samples": SAMPLES,
        "memory": MEMORY_LIMIT_BYTES,
    }
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        child.stdin.write(json.dumps(request))
        child.stdin.close()
        if child.stdout.readline().strip() != "ready":  # the import failed
            child.wait(timeout=_IMPORT_LIMIT_S)
            tail = child.stderr.read().strip().splitlines()
            return {"kind": "renderer", "message": tail[-1] if tail else "no output"}
        try:
            child.wait(timeout=RENDER_LIMIT_S)
        except subprocess.TimeoutExpired:
            return {"kind": "timeout", "message": ""}
        line = child.stdout.readline()
        return json.loads(line) if line else {"kind": "memory", "message": ""}
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()
        child.stderr.close()


def _problem(verdict: dict) -> str:
    """What is wrong, in words, from the child's verdict."""
    kind, message = verdict["kind"], verdict.get("message", "")
    if kind == "SecurityError":
        return f"it tries to reach outside the template sandbox ({message})"
    if kind == "timeout":
        return (
            f"rendering a 3-message sample did not finish within {RENDER_LIMIT_S:g} s (a loop "
            "that large is refused)"
        )
    if kind == "memory":
        return f"rendering a 3-message sample needs more than {MEMORY_LIMIT_BYTES >> 20} MiB"
    if kind == "TemplateSyntaxError":
        return f"it is not valid Jinja: {message} (line {verdict.get('line')})"
    if kind == "renderer":
        return f"the renderer could not start ({message})"
    return f"rendering a sample conversation fails: {kind}: {message}"


def check_chat_template(
    template: str, *, where: str, special_tokens: Mapping[str, str] | None = None
) -> None:
    """Raise ArtifactError (one line: `where`, e.g. "the chat template file x.jinja", and what is
    wrong) unless `template` renders the sample conversations within the limits (module
    docstring). `special_tokens`: the tokenizer's (bos_token, eos_token, ...), which
    apply_chat_template passes to the template too."""
    special_tokens = dict(special_tokens or {})
    digest = hashlib.sha256(json.dumps([template, special_tokens]).encode()).hexdigest()
    if digest in _CHECKED or _bundled(template):
        return
    verdict = _render_in_child(template, special_tokens)
    if not verdict.get("ok"):
        raise ArtifactError(
            f"{where} is refused: {_problem(verdict)}; use the model's original template or a "
            "plain Jinja chat template (sdar import-model --chat-template FILE)"
        )
    _CHECKED.add(digest)


def check_tokenizer_template(tokenizer, *, where: str) -> None:
    """`check_chat_template` on every chat template of `tokenizer` (one, or a dict of named
    ones); a tokenizer without a template passes (apply_chat_template then says so)."""
    templates = tokenizer.chat_template
    if not templates:
        return
    if isinstance(templates, str):
        templates = {"": templates}
    special = {k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)}
    for name, template in templates.items():
        label = f"{where} (template {name!r})" if name else where
        check_chat_template(template, where=label, special_tokens=special)
