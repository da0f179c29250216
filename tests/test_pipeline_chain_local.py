"""A chained embedded run (`sdar run --rounds 3 --rounds-per-run 2`: two kfp.local pipeline runs
of 2 and 1 rounds, the second from the first's final checkpoint, with the run's start model as KL
reference and the schedule continuing) ends with the same weights and the same MLflow metric
history (keys, steps, values; durations excluded) as one pipeline of 3 rounds; a re-run reuses
both finished chunks. RLSD, whose λ decays over the run's rounds: a chunk that counted its own
rounds would give other advantages. Slow: runs of 15 and 21 tasks, each a fresh Python process,
and a resume (400-600 s on the shared 2-core machine at load average 6-7, where
test_pipeline_resume took 158 s)."""

import pytest
import torch
from conftest import tiny_run_config
from safetensors.torch import load_file

from pipelines.local import run_local
from sdar_core.tracking.store import client

pytestmark = pytest.mark.slow


def _weights(checkpoint) -> dict[str, torch.Tensor]:
    files = sorted(checkpoint.rglob("*.safetensors"))
    assert files, f"no weights under {checkpoint}"
    return {f"{f.relative_to(checkpoint)}:{k}": v for f in files for k, v in load_file(f).items()}


def _history(result) -> dict[str, list[tuple[int, float]]]:
    mlflow_client = client(result.tracking_uri)
    names = mlflow_client.get_run(result.run_id).data.metrics
    return {
        name: sorted(
            (p.step, p.value) for p in mlflow_client.get_metric_history(result.run_id, name)
        )
        for name in names
        if not name.endswith("duration_s") and "seconds" not in name and "per_s" not in name
    }


def test_a_chained_run_equals_one_pipeline_and_resumes(tmp_path, tiny_model_dir):
    run = {"algorithm": "rlsd", "rounds": 3}
    whole = run_local(tiny_run_config(tmp_path / "whole", tiny_model_dir, **run))
    config = tiny_run_config(tmp_path / "chain", tiny_model_dir, **run, rounds_per_run=2)
    chained = run_local(config)

    assert chained.final_checkpoint.parent != whole.final_checkpoint.parent
    ours, theirs = _weights(chained.final_checkpoint), _weights(whole.final_checkpoint)
    assert ours.keys() == theirs.keys()
    for name, tensor in ours.items():
        torch.testing.assert_close(tensor, theirs[name], rtol=0, atol=1e-6, msg=name)
    history = _history(chained)
    assert history == _history(whole)
    assert {step for step, _ in history["update/loss"]} == {0, 1, 2}
    status = client(chained.tracking_uri).get_run(chained.run_id).info.status
    assert status == "FINISHED"
    assert chained.rows == whole.rows

    again = run_local(config)  # both chunks finished: every task is reused but those that
    # never are (the importers; continue_chain, which marks the MLflow run RUNNING again)
    assert again.run_id == chained.run_id
    assert set(again.executed) <= {"importer", "importer-2", "importer-3", "continue-chain"}
    assert _history(again) == history
