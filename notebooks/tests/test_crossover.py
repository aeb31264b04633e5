"""The crossover loader and map, on the committed results/crossover-sample and on edited
copies of it (a crossing planted, a sweep cut short, a folder that is not a sweep)."""

import json
import shutil

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import csumbench_plots as plots  # noqa: E402
from conftest import NOTEBOOKS  # noqa: E402
from csumbench_results import CROSSING_COLUMNS, load_crossover  # noqa: E402
from test_plots import check_labelled  # noqa: E402

SAMPLE = NOTEBOOKS.parent / "results" / "crossover-sample"
# The columns the issue names, in its order.
ISSUE_COLUMNS = ["cost_ns_per_sector", "algorithm", "numjobs", "strategy", "mib_s_ratio",
                 "mib_s_ci95_lo", "mib_s_ci95_hi", "cpu_s_per_gib_ratio",
                 "cpu_s_per_gib_ci95_lo", "cpu_s_per_gib_ci95_hi", "verdict"]


@pytest.fixture
def sweep_copy(tmp_path):
    return shutil.copytree(SAMPLE, tmp_path / "cx")


def test_the_sample_loads_as_the_harness_wrote_it():
    cx = load_crossover(SAMPLE)
    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    assert cx.status == "complete" and cx.baseline == "inline"
    assert list(cx.points.columns[:len(ISSUE_COLUMNS)]) == ISSUE_COLUMNS
    strategies = manifest["config"]["strategies"][1:]
    numjobs = manifest["config"]["numjobs"]
    costs = manifest["config"]["costs"]
    assert len(cx.points) == len(strategies) * len(numjobs) * len(costs)
    series = cx.series()
    assert [k for k, _ in series] == [(s, n) for s in strategies for n in numjobs]
    for _, points in series:
        assert points["cost_ns_per_sector"].is_monotonic_increasing
        assert (points["mib_s_ci95_lo"] <= points["mib_s_ratio"]).all()
        assert (points["mib_s_ratio"] <= points["mib_s_ci95_hi"]).all()
    # One sentence per series, and crossings.csv carries each one's.
    assert len(cx.answer) == len(series)
    assert set(cx.crossings["answer"]) == set(cx.answer)
    real = {c["algorithm"]: c["ns_per_sector"] for c in costs if c["requested_ns"] is None}
    assert cx.real_algorithms() == pytest.approx(real)
    assert list(cx.real_algorithms()) == sorted(real, key=real.get)


def test_every_point_is_a_compare_the_other_notebooks_read():
    cx = load_crossover(SAMPLE)
    first = cx.points["point"].iloc[0]
    run = cx.point(first)
    assert run.baseline == "inline" and run.status == "complete"
    row = cx.points.iloc[0]
    summary = run.summary().set_index("label")
    # The loader's own statistics agree with the harness's CSV.
    assert summary.loc[row["strategy"], "mib_s_ratio"] == pytest.approx(row["mib_s_ratio"])


def test_the_map_is_labelled_and_marks_every_real_algorithm(tmp_path, monkeypatch):
    monkeypatch.setenv("FIGURES_DIR", str(tmp_path / "figs"))
    cx = load_crossover(SAMPLE)
    fig = plots.crossover_map(cx)
    plots.save(fig, "crossover")
    assert (tmp_path / "figs" / "crossover.png").is_file()
    throughput, cpu = fig.axes
    assert throughput.get_xscale() == "log" and cpu.get_xscale() == "log"
    for ax in (throughput, cpu):
        labels = {t.get_text().split("\n")[0] for t in ax.texts}
        assert set(cx.real_algorithms()) <= labels
        assert len(ax.get_legend().get_texts()) == 1 + len(cx.series())
    check_labelled(fig)


def test_a_crossing_is_drawn_where_the_harness_found_it(sweep_copy):
    crossings = pd.read_csv(sweep_copy / "crossings.csv", keep_default_na=False,
                            na_values=[""])
    planted = crossings.iloc[0].copy()
    planted["kind"], planted["cost_ns_per_sector"] = "rises", 1234.0
    planted["ci95_lo_ns"], planted["ci95_hi_ns"] = 900.0, 1700.0
    crossings.iloc[0] = planted
    crossings.to_csv(sweep_copy / "crossings.csv", index=False)
    cx = load_crossover(sweep_copy)
    fig = plots.crossover_map(cx)
    throughput = fig.axes[0]
    dashed = [line for line in throughput.lines
              if line.get_linestyle() == "--" and list(line.get_xdata()) == [1234.0, 1234.0]]
    assert len(dashed) == 1
    assert any(t.get_text().startswith(f"{planted['strategy']} ×{planted['numjobs']}: ~1234 ns")
               for t in throughput.texts)
    plt.close(fig)


def test_a_sweep_cut_short_still_loads_and_draws(sweep_copy):
    (sweep_copy / "crossings.csv").unlink()
    manifest = json.loads((sweep_copy / "manifest.json").read_text())
    manifest.update(status="interrupted", answer=[])
    (sweep_copy / "manifest.json").write_text(json.dumps(manifest))
    cx = load_crossover(sweep_copy)
    assert list(cx.crossings.columns) == list(CROSSING_COLUMNS) and cx.crossings.empty
    assert "no answer" in plots.crossover_header(cx)
    check_labelled(plots.crossover_map(cx))
    # Before its first point there is nothing to draw.
    (sweep_copy / "crossover.csv").unlink()
    cx = load_crossover(sweep_copy)
    assert cx.series() == [] and plots.crossover_map(cx) is None
    assert plots.crossover_table(cx).empty


def test_a_compare_folder_is_not_taken_for_a_sweep(sample_dir):
    with pytest.raises(ValueError, match="not a crossover folder"):
        load_crossover(sample_dir)
