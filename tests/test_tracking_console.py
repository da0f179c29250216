"""The embedded run's terminal output: stage lines echoed, everything else into the log."""

import io

from sdar_core.tracking.console import MARK, ConsoleFilter, stage_line


def test_stage_line_shows_name_round_seconds_and_key_figures():
    metrics = {"rollout/success_rate": 0.25, "rollout/invalid_action_rate": 1.0, "rollout/x": 3.0}
    line = stage_line("rollout", 1, 12.34, metrics)
    assert line.startswith(MARK + "rollout")
    assert "round 1" in line and "12.3 s" in line
    assert "success_rate 0.25" in line and "invalid_action_rate 1" in line
    assert "rollout/x" not in line and " x " not in line


def test_console_filter_logs_everything_and_echoes_stage_lines_only():
    log, terminal = io.StringIO(), io.StringIO()  # not a terminal: no bar, no colour codes
    out = ConsoleFilter(log, terminal, total_tasks=3)
    kfp_noise = "\x1b[32mExecuting task 'evaluate'\x1b[0m\n    {\n  \"executorInput\": 1}\n"
    stage = "    " + stage_line("eval", 0, 1.0, {"eval/success/all": 0.5})
    out.write(kfp_noise)
    out.write(stage[:10])  # lines arrive in pieces
    out.write(stage[10:] + "\nevaluate:  50%|#####     | 1/2 [00:01<00:01]\r")
    assert log.getvalue().startswith(kfp_noise)
    assert terminal.getvalue() == f"{MARK}task evaluate\n" + stage.strip() + "\n"
    assert "\x1b[" not in terminal.getvalue()


def test_history_plot_is_a_grid_with_sane_flat_axes(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import image

    from sdar_core.run.report import history_panels
    from sdar_core.tracking.plots import _y_limits, plot_groups

    names = [
        "eval/success/all",
        "eval/success/pick",
        "eval/success/all_wilson_low",
        "update/pg_loss",
    ]
    panels = history_panels(names)
    assert panels["evaluation success by task type"] == {"pick": "eval/success/pick"}
    assert panels["losses (update)"] == {"pg_loss": "update/pg_loss"}
    groups = {f"m{i}": {"a": {0: [0.0], 1: [0.0], 2: [0.0]}} for i in range(5)}
    path = plot_groups(groups, tmp_path / "h.png", title="t")
    height, width = image.imread(path).shape[:2]
    assert width < 2.1 * height  # a 3 x 2 grid (1380 x 680), not a 2500 x 360 row

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    _y_limits(ax, "update/pg_loss", {"a": {0: [0.0], 1: [0.0]}})
    assert ax.get_ylim() == (-0.5, 0.5)
    _y_limits(ax, "eval/success/all", {"a": {0: [0.0]}})
    assert ax.get_ylim() == (-0.05, 1.05)
    plt.close(fig)
