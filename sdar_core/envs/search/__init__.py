"""Search-QA with Search-R1's protocol: `<search>` / `<answer>`, `<information>` results, EM reward.

- `make("search", retrieval_url=…, data=…)` -> `SearchEnv` (env.py), options in `SearchConfig`;
- `project_action` turns model text into a search or an answer (projection.py);
- `build_messages`, `format_information`, `instruction` - prompts and observations (prompts.py);
- `read_qa` / `write_qa` / `QAExample` - Search-R1's parquet layout (data.py);
- `exact_match`, `normalize_answer`, `eval_metrics` - reward and the paper's columns (reward.py);
- `OracleSearcher` - the expert that knows the gold documents, `RandomSearcher` - the random
  baseline (expert.py);
- `write_shipped_data` - regenerates the shipped corpus and questions (generator.py).

The retrieval server and client live in `sdar_core.retrieval`. Importing this package is cheap:
pyarrow, bm25s and httpx are imported when data is read or an environment is made.
"""

from typing import Any

from sdar_core.envs.base import BatchEnv
from sdar_core.envs.registry import register_env
from sdar_core.envs.search.config import SearchConfig
from sdar_core.envs.search.data import (
    DATA_SOURCES,
    QUESTION_TYPES,
    SHIPPED_DIR,
    QAExample,
    read_qa,
    write_qa,
)
from sdar_core.envs.search.expert import OracleSearcher, RandomSearcher
from sdar_core.envs.search.projection import SearchAction, project_action
from sdar_core.envs.search.prompts import build_messages, format_information, instruction
from sdar_core.envs.search.reward import eval_metrics, exact_match, normalize_answer
from sdar_core.errors import ConfigError

__all__ = [
    "DATA_SOURCES",
    "QUESTION_TYPES",
    "SHIPPED_DIR",
    "OracleSearcher",
    "RandomSearcher",
    "QAExample",
    "SearchAction",
    "SearchConfig",
    "build_messages",
    "eval_metrics",
    "exact_match",
    "format_information",
    "instruction",
    "make_search",
    "normalize_answer",
    "project_action",
    "read_qa",
    "write_qa",
]


@register_env("search")
def make_search(**options: Any) -> BatchEnv:
    """Build a `SearchEnv` from keyword options (the fields of `SearchConfig`)."""
    from pydantic import ValidationError

    from sdar_core.envs.search.env import SearchEnv

    try:
        config = SearchConfig(**options)
    except ValidationError as exc:
        raise ConfigError(f"bad Search-QA options: {exc}") from exc
    return SearchEnv(config)
