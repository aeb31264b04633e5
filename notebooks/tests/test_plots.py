import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import csumbench_plots as plots  # noqa: E402
from csumbench_results import load  # noqa: E402

FIGURES = (plots.throughput, plots.ratios, plots.latency_spectra, plots.bandwidth_timeline,
           plots.cpu_and_switches, plots.sweep)


def check_labelled(fig):
    """Every figure titled, every panel titled with both axes labelled."""
    assert fig._suptitle is not None or all(ax.get_title() for ax in fig.axes)
    for ax in fig.axes:
        assert ax.get_title() or ax.get_title(loc="left"), ax
        assert ax.get_ylabel(), ax.get_title()
    assert any(ax.get_xlabel() for ax in fig.axes)
    plt.close(fig)


def every_figure(run):
    for make in FIGURES:
        fig = make(run)
        if fig is not None:
            check_labelled(fig)


def test_sample_figures_are_labelled(sample_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FIGURES_DIR", str(tmp_path / "figs"))
    run = load(sample_dir)
    for make in FIGURES:
        fig = make(run)
        plots.save(fig, make.__name__)
        check_labelled(fig)
    assert len(list((tmp_path / "figs").glob("*.png"))) == len(FIGURES)


@pytest.mark.parametrize("broken", ["one", "baseline", "all"])
def test_figures_survive_deadlocks(copy, broken):
    for case in copy.cases:
        if broken == "all" or (broken == "baseline" and "inline" in case):
            copy.deadlock(case)
    if broken == "one":
        copy.deadlock(copy.cases[2])
    run = load(copy.folder)
    every_figure(run)
    text = plots.problems_markdown(run)
    assert text.count("**deadlock**") == len(run.problems)
    assert "problem(s)" in plots.header(run)


def test_figures_survive_missing_files_and_an_interrupted_run(copy):
    copy.remove(copy.cases[0], ".hlog")
    copy.remove(copy.cases[1], ".bw.csv")
    for case in copy.cases[5:]:
        copy.remove(case, ".json", ".hlog", ".bw.csv")
    copy.edit_manifest(status="interrupted", cases=copy.cases[:5])
    run = load(copy.folder)
    every_figure(run)
    assert "run interrupted" in plots.problems_markdown(run)


def test_figures_survive_a_run_with_no_case_yet(copy):
    for case in copy.cases:
        copy.remove(case, ".json", ".hlog", ".bw.csv")
    copy.edit_manifest(status="running", cases=[])
    every_figure(load(copy.folder))


def test_sweep_over_a_knob_that_is_not_a_number(copy):
    for case in copy.cases:
        if "max_workers_2" in case:
            copy.edit_case(case, strategy="kthread:idle_thresh=64,max_workers=low,ordered=0")
    run = load(copy.folder)
    assert set(run.sweeps()["value"]) == {"low", 1, 4}
    check_labelled(plots.sweep(run))


def test_the_interval_figure_draws_every_interval(sample_dir):
    run = load(sample_dir)
    fig = plots.ratios(run)
    assert len(fig.axes) == len(plots.SPOKEN)
    throughput = fig.axes[0]
    # One error bar per strategy after the baseline, each spanning its interval.
    bars = [c for c in throughput.containers if c.has_xerr]
    assert len(bars) == len(run.strategies) - 1
    summary = run.summary().iloc[1:]
    for bar, row in zip(bars, summary.itertuples()):
        (segment,) = bar.lines[2][0].get_segments()
        assert segment[0][0] == pytest.approx(row.mib_s_ci95_lo)
        assert segment[1][0] == pytest.approx(row.mib_s_ci95_hi)
    plt.close(fig)


def test_one_strategy_has_nothing_to_compare(copy):
    others = [c for c in copy.cases if "inline" not in c]
    for case in others:
        copy.remove(case, ".json", ".hlog", ".bw.csv")
    copy.edit_manifest(cases=[c for c in copy.cases if c not in others])
    run = load(copy.folder)
    assert plots.ratios(run) is None
    assert plots.verdicts_markdown(run) == "One strategy: nothing to compare with."


def test_verdicts_are_listed(sample_dir):
    text = plots.verdicts_markdown(load(sample_dir))
    rows = [line for line in text.splitlines() if line.startswith("| kthread")]
    assert len(rows) == 3
    assert "**0.93 [0.89, 0.97] slower**" in rows[0]
    assert all(line.count("|") == len(plots.SPOKEN) + 2 for line in rows)


def test_marks_for_warm_ups_outliers_noise_and_steady_state(copy):
    copy.edit_case(copy.cases[0], warmup=True)
    copy.edit_case(copy.cases[1], noise={"steal_pct": 30.0, "interference": True})
    copy.edit_case(copy.cases[2], steady={"criterion": "iops:1%", "attained": False,
                                           "attained_at_s": None})
    copy.edit_case(copy.cases[6], steady={"criterion": "iops:1%", "attained": True,
                                           "attained_at_s": 7.25})
    run = load(copy.folder)
    text = plots.verdicts_markdown(run)
    assert "kthread:max_workers=1 r1: measured under interference" in text
    assert "kthread:max_workers=2 r1: never reached steady state" in text
    assert "inline: 1 warm-up case(s), not counted" in text
    noise = plots.noise_markdown(run)
    assert "| 30.0 |" in noise and "**interference**" in noise
    assert "**never** (iops:1%)" in noise and "reached at 7.2 s" in noise
    every_figure(run)


def test_no_problems_is_said_plainly(sample_dir):
    run = load(sample_dir)
    assert plots.problems_markdown(run) == f"All {len(run.cases)} cases ended ok."
    assert "problem" not in plots.header(run)
    assert plots.noise_markdown(run).startswith("No noise or steady-state record")


def test_colours_are_fixed_per_backend_and_distinct_per_spec():
    specs = ["inline", "kthread:max_workers=1", "kthread:max_workers=2", "workqueue", "new-pool"]
    colours = plots.colours(specs)
    assert colours["inline"] == plots.BACKEND_COLOURS["inline"]
    assert colours["workqueue"] == plots.BACKEND_COLOURS["workqueue"]
    assert len(set(colours.values())) == len(specs)
    assert plots.colours(specs) == colours
    assert plots.colours(["kthread"])["kthread"] == plots.BACKEND_COLOURS["kthread"]
