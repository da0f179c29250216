"""One thin KFP component per pipeline stage.

Each file declares a lightweight Python component with typed inputs and outputs whose body
imports `sdar_core` and calls one `sdar_core.run.stages` function (DESIGN.md §4: only the function
body ships, so imports live inside it; the library and kfp are installed in the image, so there
is no packages_to_install and install_kfp_package is False). Images come from `images.py`.
"""

from components.chain_tracking import continue_chain, end_chunk_tracking, join_chain
from components.end_tracking import end_tracking
from components.evaluate import evaluate
from components.generate_rollouts import generate_rollouts
from components.index_skills import index_skills
from components.score_teacher import score_teacher
from components.sdar_update import sdar_update
from components.start_tracking import start_tracking
from components.warmstart_sft import warmstart_sft

__all__ = [
    "continue_chain",
    "end_chunk_tracking",
    "end_tracking",
    "evaluate",
    "generate_rollouts",
    "index_skills",
    "join_chain",
    "score_teacher",
    "sdar_update",
    "start_tracking",
    "warmstart_sft",
]
