"""The statistics behind "the run learned": the paired interval, the teacher-gap quantiles and
the replicate table's per-seed differences."""

import math

import pytest

from sdar_core.evaluation.metrics import _Z975, paired_difference_interval, wilson_interval


def _table(both, only_after, only_before, neither):
    after = [True] * both + [True] * only_after + [False] * only_before + [False] * neither
    before = [True] * both + [False] * only_after + [True] * only_before + [False] * neither
    return after, before


def _newcombe_paired_reference(e, f, g, h, z=_Z975):
    """Newcombe (1998) method 10 written from the 2x2 table (e: both, f: after only, g: before
    only, h: neither), independently of the library's code path."""
    n = e + f + g + h
    p1, p2 = (e + f) / n, (e + g) / n
    l1, u1 = wilson_interval(e + f, n, z=z)
    l2, u2 = wilson_interval(e + g, n, z=z)
    denom = (e + f) * (g + h) * (e + g) * (f + h)
    b = e * h - f * g
    c = b - n / 2 if b > n / 2 else (b if b < 0 else 0.0)
    phi = 0.0 if denom == 0 else c / math.sqrt(denom)
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    hi = d + math.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    return d, lo, hi


@pytest.mark.parametrize("cells", [(36, 12, 2, 0), (5, 9, 1, 17), (0, 6, 0, 26), (10, 0, 3, 19)])
def test_paired_interval_matches_the_reference(cells):
    got = paired_difference_interval(*_table(*cells))
    assert got == pytest.approx(_newcombe_paired_reference(*cells), abs=1e-12)
    assert got[1] <= got[0] <= got[2]


def test_paired_interval_is_antisymmetric_and_without_correlation_is_the_unpaired_one():
    after, before = _table(5, 9, 1, 17)
    d, lo, hi = paired_difference_interval(after, before)
    assert paired_difference_interval(before, after) == pytest.approx((-d, -hi, -lo))
    # base model at 0: phi = 0, so the interval is the square-and-add of the two Wilson intervals
    after, before = _table(0, 6, 0, 26)
    d, lo, hi = paired_difference_interval(after, before)
    low1, high1 = wilson_interval(6, 32)
    _, high0 = wilson_interval(0, 32)
    assert lo == pytest.approx(d - math.hypot(d - low1, high0))
    assert hi == pytest.approx(d + (high1 - d))
    assert lo > 0  # 6 of 32 won after, none before: the interval excludes 0


def test_paired_interval_refuses_unmatched_outcomes():
    with pytest.raises(ValueError, match="same episodes"):
        paired_difference_interval([True], [True, False])


def test_gap_quantiles_interpolate_between_order_statistics():
    from sdar_core.teacher.scoring import _gap_quantiles

    got = _gap_quantiles("won", [4.0, -1.0, 0.0, 2.0, 1.0])
    assert got == {
        "teacher_gap_won_mean": pytest.approx(1.2),
        "teacher_gap_won_p10": pytest.approx(-0.6),
        "teacher_gap_won_p50": pytest.approx(1.0),
        "teacher_gap_won_p90": pytest.approx(3.2),
        "teacher_gap_won_tokens": 5.0,
    }
    assert _gap_quantiles("lost", []) == {}


def test_replicate_rows_and_differences_are_paired_by_seed():
    from sdar_core.run.replicate_table import RunOutcome, differences, markdown_table, rows

    finals = {("grpo", 0): 0.2, ("grpo", 1): 0.3, ("grpo", 2): 0.4,
              ("sdar", 0): 0.5, ("sdar", 1): 0.5, ("sdar", 2): 0.8}  # fmt: skip
    runs = [
        RunOutcome(a, s, f"{a}{s}", start=0.1, final=v, seconds=1.0,
                   histories={"update/sdar/gate_mean": {0: 0.1, 1: 0.5}} if a == "sdar" else {})
        for (a, s), v in finals.items()
    ]  # fmt: skip
    table = rows(runs, ["grpo", "sdar"], {"grpo": "GRPO", "sdar": "SDAR"})
    assert [r["arm"] for r in table] == ["grpo", "sdar"]
    assert table[1]["final"] == pytest.approx(0.6) and table[1]["change"] == pytest.approx(0.5)
    assert table[1]["gate mean"] == pytest.approx(0.5) and table[0]["gate mean"] is None
    # per-seed differences 0.3, 0.2, 0.4: mean 0.3, sd 0.1, t(2) = 4.303
    (diff,) = differences(runs, ["grpo", "sdar"])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)
    assert diff["difference"] == pytest.approx(0.3)
    assert (diff["low"], diff["high"]) == pytest.approx((0.3 - half, 0.3 + half), abs=1e-3)
    text = markdown_table(table, [diff], [], title="t")
    assert "| sdar - grpo | 3 |" in text and "| GRPO (`grpo`) | 3 |" in text
