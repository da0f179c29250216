"""The devices and dtypes a stage may be configured with, as pydantic field types.

`Device` accepts "cpu", "cuda" and "cuda:<index>"; `DtypeName` accepts the names of
`sdar_core.models.loading.DTYPES` ("auto", "float32", "bfloat16", "float16") or None (the
checkpoint's own dtype). Anything else ("tpu", "int8") is refused when the config is built, with
the list, instead of failing (or silently running in another precision) when the model loads.
Kept free of torch so that building a config stays cheap.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from sdar_core.errors import ConfigError

__all__ = ["DEVICES", "DTYPE_NAMES", "Device", "DtypeName", "check_device", "check_dtype_name"]

DEVICES = ("cpu", "cuda", "cuda:<index>")
DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")
_CUDA_INDEX = re.compile(r"cuda:\d+")


def check_device(device: str) -> str:
    if device in ("cpu", "cuda") or _CUDA_INDEX.fullmatch(device):
        return device
    raise ConfigError(f"unsupported device {device!r}: choose one of {', '.join(DEVICES)}")


def check_dtype_name(dtype: str | None) -> str | None:
    if dtype is None or dtype in DTYPE_NAMES:
        return dtype
    raise ConfigError(
        f"unsupported dtype {dtype!r}: choose one of {', '.join(DTYPE_NAMES)}, or None for the "
        "checkpoint's own"
    )


Device = Annotated[str, AfterValidator(check_device)]
DtypeName = Annotated[str | None, AfterValidator(check_dtype_name)]
