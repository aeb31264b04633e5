import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import csumbench_plots as plots  # noqa: E402
from csumbench_results import load  # noqa: E402

FIGURES = (plots.throughput, plots.latency_spectra, plots.bandwidth_timeline,
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


def test_no_problems_is_said_plainly(sample_dir):
    run = load(sample_dir)
    assert plots.problems_markdown(run) == f"All {len(run.cases)} cases ended ok."
    assert "problem" not in plots.header(run)


def test_colours_are_fixed_per_backend_and_distinct_per_spec():
    specs = ["inline", "kthread:max_workers=1", "kthread:max_workers=2", "workqueue", "new-pool"]
    colours = plots.colours(specs)
    assert colours["inline"] == plots.BACKEND_COLOURS["inline"]
    assert colours["workqueue"] == plots.BACKEND_COLOURS["workqueue"]
    assert len(set(colours.values())) == len(specs)
    assert plots.colours(specs) == colours
    assert plots.colours(["kthread"])["kthread"] == plots.BACKEND_COLOURS["kthread"]
