"""`sdar submit` of a chain against a fake kfp.Client (no cluster here): each chunk is
submitted with the previous chunk's checkpoint URI read back from the finished run's task
details and the artifact API, one chain id throughout; a failed chunk is resubmitted alone on the
next call; a submitter that died while waiting picks the chain up from its state file."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipelines.chain import compile_chain
from pipelines.chain_submit import ChainFailed, submit_chain
from pipelines.sdar_pipeline import PipelineOptions
from sdar_core.errors import ConfigError


class FakeKfp:
    """The kfp.Client methods submit_chain calls: create_run_from_pipeline_package,
    wait_for_run_completion, get_run and the generated client's call_api (artifact API). Each
    run "executes" its chunk file: its last update's checkpoint gets a URI derived from the run."""

    def __init__(self, outcomes=()):
        self.outcomes = list(outcomes)  # final states of the next runs (default SUCCEEDED)
        self.runs: dict[str, dict] = {}
        self.artifacts: dict[str, str] = {}
        self.waited: list[str] = []
        self._run_api = SimpleNamespace(api_client=SimpleNamespace(call_api=self._call_api))

    def create_run_from_pipeline_package(self, package, arguments, run_name, experiment_name,
                                         enable_caching):  # fmt: skip
        assert enable_caching and Path(package).is_file()
        run_id = f"kfp-{len(self.runs) + 1}"
        state = self.outcomes.pop(0) if self.outcomes else "SUCCEEDED"
        self.runs[run_id] = {"package": Path(package).name, "arguments": arguments, "state": state}
        return SimpleNamespace(run_id=run_id)

    def wait_for_run_completion(self, run_id, timeout):
        self.waited.append(run_id)
        return SimpleNamespace(state=self.runs[run_id]["state"])

    def get_run(self, run_id):
        run = self.runs[run_id]
        details = []
        if run["state"] == "SUCCEEDED":
            for task in self._tasks(run["package"]):
                artifact_id = str(len(self.artifacts) + 1)
                self.artifacts[artifact_id] = f"minio://mlpipeline/{run_id}/{task}/checkpoint"
                details.append(
                    SimpleNamespace(
                        display_name=task,
                        state="SUCCEEDED",
                        outputs={"checkpoint": SimpleNamespace(artifact_ids=[artifact_id])},
                    )
                )
        return SimpleNamespace(run_details=SimpleNamespace(task_details=details))

    def _tasks(self, package):
        import yaml

        text = (self.folder / package).read_text()
        spec = next(yaml.load_all(text, Loader=yaml.CSafeLoader))
        dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
        return [t["taskInfo"]["name"] for dag in dags for t in dag["tasks"].values()]

    def _call_api(self, path, method, path_params, **kwargs):
        assert path == "/apis/v2beta1/artifacts/{artifact_id}" and method == "GET"
        return {
            "artifact_id": path_params["artifact_id"],
            "uri": self.artifacts[path_params["artifact_id"]],
        }


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Path:
    """A 5-round GRPO run compiled as chunks of 2 (2 + 2 + 1 rounds)."""
    out = tmp_path_factory.mktemp("chain") / "grpo.yaml"
    options = PipelineOptions(algorithm="grpo", rounds=5, profile="local")
    written = compile_chain(options, out, rounds_per_run=2)
    assert [p.name for p in written] == [
        "grpo-1of3.yaml", "grpo-2of3.yaml", "grpo-3of3.yaml", "grpo.chain.json",
    ]  # fmt: skip
    return written[-1]


ARGS = {"model_uri": "minio://models/base", "games_uri": "minio://data/games", "inputs_json": "{}"}


def _fake(chain: Path, outcomes=()) -> FakeKfp:
    fake = FakeKfp(outcomes)
    fake.folder = chain.parent
    return fake


def test_each_chunk_starts_from_the_previous_checkpoint(chain, tmp_path):
    fake = _fake(chain)
    state = submit_chain(chain, fake, arguments=ARGS, run_name="r", state_path=tmp_path / "s.json",
                         echo=lambda _: None)  # fmt: skip
    runs = list(fake.runs.values())
    assert [r["package"] for r in runs] == ["grpo-1of3.yaml", "grpo-2of3.yaml", "grpo-3of3.yaml"]
    chain_ids = {r["arguments"]["chain_id"] for r in runs}
    assert chain_ids == {state["chain_id"]}
    assert runs[0]["arguments"] == ARGS | {"chain_id": state["chain_id"]}
    assert (
        runs[1]["arguments"]["model_uri"] == "minio://mlpipeline/kfp-1/round 1: update/checkpoint"
    )
    assert (
        runs[2]["arguments"]["model_uri"] == "minio://mlpipeline/kfp-2/round 3: update/checkpoint"
    )
    for later in runs[1:]:  # the KL reference stays the run's start model; hashes logged once
        assert later["arguments"]["start_model_uri"] == ARGS["model_uri"]
        assert "inputs_json" not in later["arguments"]
    saved = json.loads((tmp_path / "s.json").read_text())
    assert [c["status"] for c in saved["chunks"]] == ["SUCCEEDED"] * 3
    assert saved["chunks"][2]["checkpoint_uri"].endswith("kfp-3/round 4: update/checkpoint")


def test_a_failed_chunk_is_resubmitted_alone(chain, tmp_path):
    fake = _fake(chain, outcomes=["SUCCEEDED", "FAILED"])
    state_path = tmp_path / "s.json"
    with pytest.raises(ChainFailed, match="run 2 of 3 .* ended FAILED .*kfp-2"):
        submit_chain(chain, fake, arguments=ARGS, run_name="r", state_path=state_path,
                     echo=lambda _: None)  # fmt: skip
    assert len(fake.runs) == 2
    state = submit_chain(chain, fake, arguments=ARGS, run_name="r", state_path=state_path,
                         echo=lambda _: None)  # fmt: skip
    packages = [r["package"] for r in fake.runs.values()]
    assert packages == ["grpo-1of3.yaml", "grpo-2of3.yaml", "grpo-2of3.yaml", "grpo-3of3.yaml"]
    resubmitted = fake.runs["kfp-3"]["arguments"]
    assert resubmitted["model_uri"].startswith("minio://mlpipeline/kfp-1/")  # chunk 1 not rerun
    assert resubmitted["chain_id"] == state["chain_id"]
    assert [c["kfp_run_id"] for c in state["chunks"]] == ["kfp-1", "kfp-3", "kfp-4"]


def test_a_chain_is_picked_up_from_its_state_file(chain, tmp_path):
    fake = _fake(chain, outcomes=["SUCCEEDED", "RUNNING"])
    state_path = tmp_path / "s.json"

    class Died(Exception):
        pass

    def die_on_second_wait(run_id, timeout, _wait=fake.wait_for_run_completion):
        if run_id == "kfp-2":
            raise Died  # the submitter is killed while it waits for chunk 2
        return _wait(run_id, timeout)

    fake.wait_for_run_completion = die_on_second_wait
    with pytest.raises(Died):
        submit_chain(chain, fake, arguments=ARGS, run_name="r", state_path=state_path,
                     echo=lambda _: None)  # fmt: skip
    saved = json.loads(state_path.read_text())
    assert [c["status"] for c in saved["chunks"]] == ["SUCCEEDED", "RUNNING", None]

    del fake.wait_for_run_completion  # the class's again
    fake.runs["kfp-2"]["state"] = "SUCCEEDED"  # it finished meanwhile
    submit_chain(chain, fake, arguments=ARGS, run_name="r", state_path=state_path,
                 echo=lambda _: None)  # fmt: skip
    assert list(fake.runs) == ["kfp-1", "kfp-2", "kfp-3"]  # chunk 2 waited for, not resubmitted
    assert fake.waited[-2:] == ["kfp-2", "kfp-3"]


def test_a_state_file_of_other_arguments_is_refused(chain, tmp_path):
    state_path = tmp_path / "s.json"
    submit_chain(chain, _fake(chain), arguments=ARGS, run_name="r", state_path=state_path,
                 echo=lambda _: None)  # fmt: skip
    other = ARGS | {"games_uri": "minio://data/other"}
    with pytest.raises(ConfigError, match="belongs to another chain or other arguments"):
        submit_chain(chain, _fake(chain), arguments=other, run_name="r", state_path=state_path,
                     echo=lambda _: None)  # fmt: skip


def test_the_commands_compile_and_submit_a_chain(tmp_path, monkeypatch, capsys):
    """`sdar compile --rounds-per-run` writes the chain; `sdar submit OUT.chain.json` runs it
    (kfp.Client replaced by the fake) and a second call finds every run done."""
    from pipelines import submit as submit_module
    from sdar_core.cli import main

    out = tmp_path / "grpo.yaml"
    args = ["--algorithm", "grpo", "--rounds", "3", "--profile", "local"]
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", str(out), *args, "--rounds-per-run", "2"])
    assert exit_info.value.code in (0, None)
    manifest = tmp_path / "grpo.chain.json"
    printed = capsys.readouterr().out.splitlines()
    assert printed[:4] == [
        str(tmp_path / "grpo-1of2.yaml"), str(tmp_path / "grpo-2of2.yaml"), str(manifest),
        "plan: 2 run(s), 3 round(s) in all",
    ]  # fmt: skip
    assert printed[4].startswith("  run 1: grpo-1of2.yaml: 2 round(s), ")
    fake = _fake(manifest)
    monkeypatch.setattr(submit_module, "make_client", lambda **_: fake)
    state = str(tmp_path / "s.json")
    submit = ["submit", str(manifest), "--host", "http://kfp", "--model", "minio://m",
              "--data", "minio://d", "--run-name", "r", "--chain-state", state]  # fmt: skip
    for _ in range(2):
        with pytest.raises(SystemExit) as exit_info:
            main(submit)
        assert exit_info.value.code in (0, None)
    assert list(fake.runs) == ["kfp-1", "kfp-2"]
    assert "run 2 of 2 (rounds 2-2): done (KFP run kfp-2)" in capsys.readouterr().out
