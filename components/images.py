"""The container images the components run in: declared once, pinned, never `latest`.

`SDAR_IMAGE_REGISTRY` (read when this module is imported, i.e. at compile time) sets the registry
prefix, e.g. `ghcr.io/acme` or, for a kind cluster, `localhost/sdar`. Each image is built from
`images/<name>/Dockerfile`, whose `SDAR_IMAGE_TAG` build argument must equal the tag here
(tests/test_images.py checks both).
"""

import os

__all__ = [
    "CPU_IMAGE",
    "DEFAULT_REGISTRY",
    "GPU_IMAGE",
    "IMAGE_TAGS",
    "REGISTRY",
    "image_ref",
    "unpublished_registry_warning",
]

# Nobody publishes images here: a pipeline compiled against it has pods that cannot pull them.
DEFAULT_REGISTRY = "ghcr.io/sdar-project"
REGISTRY = os.environ.get("SDAR_IMAGE_REGISTRY", DEFAULT_REGISTRY).rstrip("/")

IMAGE_TAGS = {
    "sdar-cpu": "0.1.0",  # python:3.11-slim, CPU torch, the project installed
    "sdar-gpu": "0.2.0",  # CUDA 13.0 devel, the `gpu` extra (vLLM) and DeepSpeed, GPU lock
}


def image_ref(name: str) -> str:
    """`<registry>/<name>:<pinned tag>`."""
    return f"{REGISTRY}/{name}:{IMAGE_TAGS[name]}"


def unpublished_registry_warning() -> str | None:
    """A one-line warning when the images point at DEFAULT_REGISTRY; None otherwise."""
    if REGISTRY != DEFAULT_REGISTRY:
        return None
    return (
        f"warning: the images are {image_ref('sdar-cpu')} and {image_ref('sdar-gpu')} in the "
        f"default registry {DEFAULT_REGISTRY}, where none is published: build and push them "
        "(README: Building and pushing the images) and compile with SDAR_IMAGE_REGISTRY set to "
        "your registry"
    )


CPU_IMAGE = image_ref("sdar-cpu")
GPU_IMAGE = image_ref("sdar-gpu")
