"""`sdar replicate`'s wiring with a fake runner: each arm runs its own preset and settings, the
arm/seed runs become children of one MLflow parent run holding the curves, and the tables name
the arms as the paper does. No pipeline runs here (the runner is injected)."""

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sdar_core.errors import ConfigError
from sdar_core.run import RunConfig
from sdar_core.run.arms import DEFAULT_ALGORITHMS, Arm, arms_for
from sdar_core.run.replicate import replicate
from sdar_core.run.replicate_phases import OVERHEAD, PHASES
from sdar_core.tracking import StageTracker, start_run
from sdar_core.tracking.store import client, prepare_experiment

# final held-out success each preset's fake run reports, per seed: distinct per preset, so a
# table built from the wrong preset's runs would show
FINAL = {"grpo": 0.5, "grpo_opsd": 0.625, "sdar": 0.75, "opsd": 0.25}


@dataclass
class FakeResult:
    run_id: str
    run_name: str
    tracking_uri: str
    log_path: Path | None
    learning: dict[str, Any] | None
    setup_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)


class FakeClock:
    """A clock that moves only when the fake runner says its run took time."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# what a fake run's stages take: per round (rollout, teacher, update) or per evaluation, in
# seconds; its set-up, and what the runner spends besides (overhead), per run
STAGE_SECONDS = {"rollout": 4.0, "teacher": 2.0, "update": 8.0, "eval": 1.0}
SETUP_SECONDS, OVERHEAD_SECONDS = 1.0, 3.0
WARM_STAGES = {"index": 1.5, "sft": 20.0, "eval": 1.0, "eval_base": 1.0, "eval_ceiling": 1.0}


class FakeRunner:
    """Records the RunConfig of every call; logs what a pipeline run would into MLflow and
    reports stage times as run_local does (`clock`, when given, moves by the run's wall time)."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.calls: list[RunConfig] = []
        self.clock = clock

    def _took(self, stages: dict[str, float]) -> dict[str, float]:
        if self.clock is not None:
            self.clock.now += SETUP_SECONDS + sum(stages.values()) + OVERHEAD_SECONDS
        return stages

    def __call__(self, config: RunConfig) -> FakeResult:
        self.calls.append(config)
        uri = config.resolved_tracking_uri()
        prepare_experiment(uri, config.experiment, artifact_root=config.out_dir / "mlruns")
        seed = config.rollout.seed
        name = f"{config.algorithm}-{len(self.calls)}"
        run_id = start_run(
            uri, config.experiment, run_name=name,
            params={"algorithm": config.algorithm, "seed": seed},
        )  # fmt: skip
        if config.warm_start:
            checkpoint = config.out_dir / "pipeline_root" / name / "warmstart-sft" / "checkpoint"
            checkpoint.mkdir(parents=True)
            (checkpoint / "config.json").write_text("{}")
            StageTracker(uri, run_id, stage="eval", round=0).log({"success": {"all": 0.25}})
            stages = dict(WARM_STAGES)
            if config.ceiling:
                StageTracker(uri, run_id, stage="eval_ceiling", round=0).log(
                    {"success": {"all": 0.9375}}
                )
            else:
                stages.pop("eval_ceiling")
            client(uri).set_terminated(run_id)
            return FakeResult(run_id, name, uri, None, None, SETUP_SECONDS, self._took(stages))
        final = FINAL[config.algorithm] + 0.03125 * seed + (config.update.distill_coef or 0)
        for r in range(config.rounds):
            StageTracker(uri, run_id, stage="rollout", round=r).log({"success_rate": 0.25 * r})
            StageTracker(uri, run_id, stage="update", round=r).log(
                {
                    "advantages": {
                        "flat_group_ratio": 0.5 - 0.125 * r + 0.0625 * seed,
                        "outcome_flat_group_ratio": 0.75 - 0.125 * r,
                    }
                }
            )
        # start, every eval_every-th round but the last (halfway from start to final), final
        every = config.eval_every
        steps = [n for n in range(1, config.rounds) if every and n % every == 0]
        for n in [0, *steps, config.rounds]:
            value = 0.25 + (final - 0.25) * n / config.rounds
            StageTracker(uri, run_id, stage="eval", round=n).log(
                {"success": {"all": value}, "invalid_action_rate": 0.125 * n}
            )
        client(uri).set_terminated(run_id)
        stages = {
            stage: seconds * (2 + len(steps) if stage == "eval" else config.rounds)
            for stage, seconds in STAGE_SECONDS.items()
            if stage != "teacher" or config.algorithm != "grpo"
        }
        learned = {"start": 0.25, "final": final}
        return FakeResult(run_id, name, uri, None, learned, SETUP_SECONDS, self._took(stages))


def test_default_arms_are_the_papers_comparison_plus_pure_opsd():
    arms = arms_for()
    assert [a.algorithm for a in arms] == ["grpo", "grpo_opsd", "sdar", "opsd"]
    assert [a.display for a in arms] == ["GRPO", "GRPO+OPSD", "SDAR", "OPSD"]
    assert tuple(a.label for a in arms) == DEFAULT_ALGORITHMS


def test_coefficient_and_noise_arms_are_labelled_and_validated():
    arms = arms_for(("grpo", "sdar", "grpo_opsd"), sdar_coefs=(0.01, 0.1), noise=0.5)
    assert [a.label for a in arms] == [
        "grpo",
        "sdar",
        "grpo_opsd",
        "sdar@0.1",
        "sdar+noise0.5",
        "grpo_opsd+noise0.5",
    ]  # fmt: skip  (0.01 is the sdar preset's own coefficient: not run twice)
    assert arms[3] == Arm("sdar", distill_coef=0.1)
    assert arms[4] == Arm("sdar", skill_noise=0.5) and arms[4].display == (
        "SDAR, retrieval noise 0.5"
    )
    with pytest.raises(ConfigError, match="--noise must be in"):
        arms_for(noise=1.5)
    with pytest.raises(ConfigError, match="keep at least one"):
        arms_for(("grpo", "opsd"), noise=0.5)
    with pytest.raises(ConfigError, match="does not train"):
        arms_for(("grpo", "vanilla"))


def test_each_arm_runs_its_own_preset_and_settings(tmp_path):
    base = RunConfig(out_dir=tmp_path, rounds=2)
    arms = arms_for(sdar_coefs=(0.1,), noise=0.5)
    runner = FakeRunner()
    lines: list[str] = []
    result = replicate(base, runner=runner, arms=arms, seeds=(0, 1), on_run=lines.append)

    warm, *trained = runner.calls
    assert warm.algorithm == "vanilla" and warm.warm_start and warm.rounds == 0
    checkpoint = tmp_path / "pipeline_root" / "vanilla-1" / "warmstart-sft" / "checkpoint"
    expected = [(a.algorithm, a.distill_coef, a.skill_noise, s) for s in (0, 1) for a in arms]
    got = [
        (c.algorithm, c.update.distill_coef, c.teacher.skill_noise, c.rollout.seed) for c in trained
    ]
    assert got == expected  # grpo_opsd is grpo_opsd (not opsd), in the arms' order, per seed
    for config in trained:
        assert Path(config.model) == checkpoint.resolve() and not config.warm_start
        assert config.update.seed == config.teacher.seed == config.rollout.seed
        assert config.rounds == 2

    by_arm = {row["arm"]: row for row in result.rows}
    assert list(by_arm) == [a.label for a in arms]
    assert by_arm["grpo_opsd"]["final"] == pytest.approx(FINAL["grpo_opsd"] + 0.03125 / 2)
    assert by_arm["sdar@0.1"]["final"] == pytest.approx(FINAL["sdar"] + 0.1 + 0.03125 / 2)
    # flat-group ratio of the last round (1): 0.375 + 0.0625 * seed, mean over seeds 0, 1
    assert by_arm["grpo"]["flat groups"] == pytest.approx(0.40625)
    assert by_arm["grpo"]["outcome-flat groups"] == pytest.approx(0.625)
    diffs = {d["comparison"]: d["difference"] for d in result.differences}
    assert diffs["grpo_opsd - grpo"] == pytest.approx(0.125)
    assert diffs["opsd - grpo"] == pytest.approx(-0.25)
    text = (result.out_dir / "replicate.md").read_text()
    assert "| GRPO+OPSD (`grpo_opsd`) | 2 |" in text and "| OPSD (`opsd`) | 2 |" in text
    assert "| SDAR, coef 0.1 (`sdar@0.1`) | 2 |" in text
    # per round: held-out success (start at 0, final at 2), rollout success, flat-group ratio
    assert "| grpo | 0 | 0.250 | 0.000 | 0.000 | 0.531 | 0.750 | - |" in text
    assert "| grpo | 1 | - | 0.250 | - | 0.406 | 0.625 | - |" in text
    assert by_arm["grpo"]["held-out invalid actions"] == 0.25  # the final evaluation's (round 2)

    # per-round curve with a band over the two seeds
    (r0, r1) = result.curves["update/advantages/flat_group_ratio"]["sdar"]
    assert (r0["round"], r0["mean"], r0["seeds"]) == (0, pytest.approx(0.53125), 2)
    assert r1["low"] < r1["mean"] < r1["high"]

    mlflow_client = client(base.resolved_tracking_uri())
    parent = mlflow_client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.info.run_name == "replicate"
    history = mlflow_client.get_metric_history(
        result.parent_run_id, "arms/eval/success/all/sdar_noise0.5"
    )
    assert [(p.step, p.value) for p in history] == [
        (0, 0.25), (2, pytest.approx(FINAL["sdar"] + 0.03125 / 2)),
    ]  # fmt: skip
    for run in result.runs:
        tags = mlflow_client.get_run(run.run_id).data.tags
        assert tags["mlflow.parentRunId"] == result.parent_run_id and tags["sdar.arm"] == run.arm
    warm_tags = mlflow_client.get_run(result.warm_start_run_id).data.tags
    assert warm_tags["mlflow.parentRunId"] == result.parent_run_id
    artifacts = {a.path for a in mlflow_client.list_artifacts(result.parent_run_id, "replicate")}
    assert {"replicate/replicate.md", "replicate/replicate.json"} <= artifacts
    # sdar compare groups the parent's children by arm: the coefficient and noise arms are not
    # mistaken for repeated seeds of sdar
    comparison = (result.out_dir / "comparison" / "comparison.md").read_text()
    assert "| sdar@0.1 | 2 |" in comparison and "| sdar | 2 |" in comparison


def test_replicate_refuses_repeated_seeds(tmp_path):
    with pytest.raises(ConfigError, match="seeds must be distinct"):
        replicate(RunConfig(out_dir=tmp_path), runner=FakeRunner(), seeds=(1, 1))


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_run_ends_the_parent_failed(tmp_path, workers):
    runner = FakeRunner()

    def failing(config):
        if not config.warm_start and config.algorithm == "sdar":
            raise RuntimeError("the sdar run broke")
        return runner(config)

    base = RunConfig(out_dir=tmp_path, rounds=1)
    with pytest.raises(RuntimeError, match="sdar run broke"):
        replicate(
            base, runner=failing, arms=arms_for(("grpo", "sdar")), seeds=(0,), workers=workers
        )
    mlflow_client = client(base.resolved_tracking_uri())
    experiment = mlflow_client.get_experiment_by_name(base.experiment)
    (parent,) = mlflow_client.search_runs(
        [experiment.experiment_id], filter_string="tags.`sdar.replicate` = 'true'"
    )
    assert parent.info.status == "FAILED"


def test_the_warm_start_holds_the_ceiling_and_every_run_its_curve(tmp_path):
    base = RunConfig(out_dir=tmp_path, rounds=4, eval_every=1)  # the miniature, sdar: ceiling on
    runner = FakeRunner()
    result = replicate(
        base, runner=runner, arms=arms_for(("grpo", "sdar")), seeds=(0, 1), level=0.5,
        on_run=lambda line: None,
    )  # fmt: skip
    warm, *trained = runner.calls
    assert warm.ceiling and warm.eval_every is None
    assert all(not c.ceiling and c.eval_every == 1 for c in trained)  # evaluated once, not per run
    assert result.warm_start["success"] == 0.25 and result.warm_start["ceiling"] == 0.9375
    text = (result.out_dir / "replicate.md").read_text()
    line = "held-out success 0.250; start, skills in prompt (teacher's ceiling): 0.938."
    assert line in text
    saved = json.loads((result.out_dir / "replicate.json").read_text())
    assert saved["warm_start"]["ceiling"] == 0.9375
    # every round is a point of the held-out curve, and rounds to the level read them: sdar's
    # seeds go 0.25 -> 0.75 (+ 0.03125 * seed) linearly over 4 rounds, first >= 0.5 at round 2
    points = result.curves["eval/success/all"]["sdar"]
    assert [p["round"] for p in points] == [0, 1, 2, 3, 4]
    assert points[2]["mean"] == pytest.approx(0.25 + (0.765625 - 0.25) / 2)
    reached = {r["arm"]: r for r in saved["rounds_to_level"]}
    assert reached["sdar"]["mean_round"] == 2 and reached["sdar"]["reached"] == 2
    assert reached["grpo"]["mean_round"] == 4  # 0.5 (+ 0.03125 * seed): the last round only


def test_the_wall_time_by_phase_comes_from_the_stage_records(tmp_path):
    clock = FakeClock()
    runner = FakeRunner(clock)
    base = RunConfig(out_dir=tmp_path, rounds=2)
    result = replicate(
        base, runner=runner, arms=arms_for(("grpo", "sdar")), seeds=(0, 1, 2),
        on_run=lambda line: None, clock=clock,
    )  # fmt: skip
    phases = result.phases
    warm = phases["warm_start"]
    assert (warm["index"], warm["warm start"], warm["evaluation"]) == (1.5, 20.0, 3.0)
    assert warm["set-up"] == SETUP_SECONDS and warm[OVERHEAD] == pytest.approx(OVERHEAD_SECONDS)
    sdar, grpo = phases["arms"]["sdar"], phases["arms"]["grpo"]
    # 3 seeds x 2 rounds x per-round seconds; 3 seeds x 2 evaluations (start, final)
    assert (sdar["rollouts"], sdar["teacher"], sdar["update"]) == (24.0, 12.0, 48.0)
    assert sdar["evaluation"] == 6.0 and grpo["teacher"] == 0.0
    for part in [warm, sdar, grpo, phases["all"]]:
        recorded = sum(part[p] for p in PHASES)
        assert recorded <= part["total"]
        assert recorded + part[OVERHEAD] == pytest.approx(part["total"])
    assert sdar["total"] == pytest.approx(sum(r.seconds for r in result.runs if r.arm == "sdar"))
    assert phases["all"]["total"] == pytest.approx(result.seconds["total"])
    assert result.seconds["warm_start"] == warm["total"]
    text = (result.out_dir / "replicate.md").read_text()
    assert "| wall time (s) | set-up | index | warm start | rollouts |" in text
    assert "| sdar (3 seeds) | 3 | 0 | 0 | 24 | 12 | 48 | 6 | 9 | 102 |" in text
    saved = json.loads((result.out_dir / "replicate.json").read_text())
    assert saved["phases"]["arms"]["grpo"]["update"] == 48.0


def test_runs_go_workers_at_a_time_and_the_tables_keep_their_order(tmp_path):
    arms = arms_for(("grpo", "sdar"))
    quiet = {"arms": arms, "seeds": (0, 1), "on_run": lambda line: None}
    serial = replicate(
        RunConfig(out_dir=tmp_path / "serial", rounds=1), runner=FakeRunner(), **quiet
    )

    fake, one_at_a_time = FakeRunner(), threading.Lock()
    two_under_way = threading.Barrier(2, timeout=60)

    def runner(config):
        if not config.warm_start:
            two_under_way.wait()  # BrokenBarrierError unless two training runs go at once
        with one_at_a_time:  # the fake itself is not thread-safe
            return fake(config)

    base = RunConfig(out_dir=tmp_path / "parallel", rounds=1)
    together = replicate(base, runner=runner, workers=2, **quiet)
    assert [(r.arm, r.seed) for r in together.runs] == [(r.arm, r.seed) for r in serial.runs]
    assert [(r.final, r.histories) for r in together.runs] == [
        (r.final, r.histories) for r in serial.runs
    ]
    assert together.rows == serial.rows and together.differences == serial.differences
    text = (together.out_dir / "replicate.md").read_text()
    assert "The training runs went 2 at a time" in text
    assert "at a time" not in (serial.out_dir / "replicate.md").read_text()
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        replicate(base, runner=runner, workers=0, **quiet)


def test_the_warm_start_goes_to_its_own_runner(tmp_path):
    warm_runs, trained = [], []
    fake = FakeRunner()

    def warm_runner(config):
        warm_runs.append(config.warm_start)
        return fake(config)

    def runner(config):
        trained.append(config.warm_start)
        return fake(config)

    replicate(
        RunConfig(out_dir=tmp_path, rounds=1), runner=runner, warm_runner=warm_runner,
        arms=arms_for(("grpo",)), seeds=(0, 1), on_run=lambda line: None, workers=2,
    )  # fmt: skip
    assert warm_runs == [True] and trained == [False, False]


def test_runs_with_a_teacher_start_first_and_are_reported_in_order(tmp_path):
    fake, lock, started = FakeRunner(), threading.Lock(), []

    def runner(config):
        with lock:
            if not config.warm_start:
                started.append((config.algorithm, config.rollout.seed))
            return fake(config)

    result = replicate(
        RunConfig(out_dir=tmp_path, rounds=1), runner=runner, arms=arms_for(("grpo", "sdar")),
        seeds=(0, 1), on_run=lambda line: None, workers=2,
    )  # fmt: skip
    # the two sdar runs (a teacher stage: longer) went first, the grpo ones once a worker was free
    assert sorted(started[:2]) == [("sdar", 0), ("sdar", 1)]
    assert sorted(started[2:]) == [("grpo", 0), ("grpo", 1)]
    assert [(r.arm, r.seed) for r in result.runs] == [
        ("grpo", 0), ("sdar", 0), ("grpo", 1), ("sdar", 1)
    ]  # fmt: skip
