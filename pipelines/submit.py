"""Submit a compiled pipeline to a Kubeflow Pipelines server with `kfp.Client`.

`kfp.Client(host=...)` checks the server's health when it is built (DESIGN.md §4), so an
unreachable host fails here, before anything is uploaded. Caching stays on by default, so
re-submitting the same arguments resumes after the last finished stage; `enable_caching=False`
(`sdar submit --no-cache`) runs every task again (kfp.Client turns caching off on every task of
the pipeline before it uploads it).
"""

from pathlib import Path
from typing import Any

from sdar_core.errors import ArtifactError

__all__ = ["make_client", "submit_pipeline"]


def make_client(*, host: str, namespace: str | None = None, token: str | None = None) -> Any:
    """A kfp.Client for `host` (it checks the server's health here)."""
    import kfp

    return kfp.Client(host=host, namespace=namespace, existing_token=token)


def submit_pipeline(
    package: str | Path,
    *,
    host: str,
    arguments: dict[str, Any],
    run_name: str,
    experiment: str = "sdar",
    namespace: str | None = None,
    token: str | None = None,
    enable_caching: bool = True,
) -> str:
    """Create a run of the compiled pipeline `package`; return the KFP run id.

    `namespace` is the Kubeflow profile namespace of a multi-user server; `token` a bearer token
    (e.g. a service-account token) sent with every request.
    """
    path = Path(package)
    if not path.is_file():
        raise ArtifactError(f"no compiled pipeline at {path}: run `sdar compile` first")
    client = make_client(host=host, namespace=namespace, token=token)
    run = client.create_run_from_pipeline_package(
        str(path),
        arguments=arguments,
        run_name=run_name,
        experiment_name=experiment,
        enable_caching=enable_caching,
    )
    return run.run_id
